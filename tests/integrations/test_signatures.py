"""Webhook signatures: PagerDuty's and GitHub's checked, Standard Webhooks signed and checked."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from rca.errors import InvalidArgument
from rca.integrations.signatures import (
    MAX_HEADER_CHARS,
    MAX_SIGNATURES,
    new_webhook_secret,
    sign_standard_webhook,
    standard_webhook_headers,
    verify_github,
    verify_pagerduty,
    verify_standard_webhook,
    webhook_secret_key,
)

BODY = b'{"event":{"id":"01HXR7","event_type":"incident.triggered","data":{"title":"caf\xc3\xa9"}}}'
SECRET = "pd-signing-secret-one"
OLD_SECRET = "pd-signing-secret-zero"


def hex_mac(secret: str, body: bytes = BODY) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- PagerDuty -------------------------------------------------------------------------------


def test_pagerduty_right_signature_passes() -> None:
    assert verify_pagerduty(BODY, f"v1={hex_mac(SECRET)}", [SECRET])


def test_pagerduty_wrong_secret_or_changed_body_fails() -> None:
    assert not verify_pagerduty(BODY, f"v1={hex_mac('another')}", [SECRET])
    assert not verify_pagerduty(BODY + b" ", f"v1={hex_mac(SECRET)}", [SECRET])


@pytest.mark.parametrize("header", [None, "", "   "])
def test_pagerduty_missing_header_fails(header: str | None) -> None:
    assert not verify_pagerduty(BODY, header, [SECRET])


def test_pagerduty_rotation_either_entry_or_either_secret() -> None:
    both = f"v1={hex_mac(OLD_SECRET)},v1={hex_mac(SECRET)}"
    assert verify_pagerduty(BODY, both, [SECRET])
    assert verify_pagerduty(BODY, both, [OLD_SECRET])
    # PagerDuty's header may come with spaces after the commas.
    assert verify_pagerduty(BODY, f"v1={hex_mac('x')}, v1={hex_mac(SECRET)}", [SECRET])
    # We may accept two secrets while rotating on our side.
    assert verify_pagerduty(BODY, f"v1={hex_mac(OLD_SECRET)}", [SECRET, OLD_SECRET])


def test_pagerduty_truncated_hex_fails() -> None:
    assert not verify_pagerduty(BODY, f"v1={hex_mac(SECRET)[:-2]}", [SECRET])
    assert not verify_pagerduty(BODY, f"v1={hex_mac(SECRET)}00", [SECRET])
    assert not verify_pagerduty(BODY, "v1=", [SECRET])


def test_pagerduty_uppercase_hex_passes() -> None:
    assert verify_pagerduty(BODY, f"v1={hex_mac(SECRET).upper()}", [SECRET])


def test_pagerduty_not_hex_fails() -> None:
    assert not verify_pagerduty(BODY, "v1=" + "zz" * 32, [SECRET])


def test_pagerduty_other_versions_are_ignored() -> None:
    right = hex_mac(SECRET)
    assert not verify_pagerduty(BODY, f"v2={right}", [SECRET])
    assert not verify_pagerduty(BODY, f"V1={right}", [SECRET])
    assert not verify_pagerduty(BODY, f"sha256={right}", [SECRET])
    assert verify_pagerduty(BODY, f"v2=abcdef,v1={right}", [SECRET])


def test_pagerduty_malformed_header_fails() -> None:
    right = hex_mac(SECRET)
    assert not verify_pagerduty(BODY, right, [SECRET])
    assert not verify_pagerduty(BODY, f"garbage,v1={right}", [SECRET])


def test_pagerduty_overlong_header_fails() -> None:
    right = f"v1={hex_mac(SECRET)}"
    padding = "v9=" + "a" * MAX_HEADER_CHARS
    assert not verify_pagerduty(BODY, f"{padding},{right}", [SECRET])
    many = ",".join([f"v1={hex_mac('x')}"] * MAX_SIGNATURES + [right])
    assert len(many) < MAX_HEADER_CHARS
    assert not verify_pagerduty(BODY, many, [SECRET])


def test_pagerduty_no_usable_secret_fails() -> None:
    assert not verify_pagerduty(BODY, f"v1={hex_mac(SECRET)}", [])
    assert not verify_pagerduty(BODY, f"v1={hex_mac('')}", [""])


# --- GitHub ----------------------------------------------------------------------------------


def test_github_right_signature_passes() -> None:
    assert verify_github(BODY, f"sha256={hex_mac(SECRET)}", [SECRET])
    assert verify_github(BODY, f"sha256={hex_mac(SECRET).upper()}", [SECRET])
    assert verify_github(BODY, f"sha256={hex_mac(OLD_SECRET)}", [SECRET, OLD_SECRET])


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f"sha256={hex_mac('wrong')}",
        f"sha256={hex_mac(SECRET)[:-1]}",
        f"sha1={hex_mac(SECRET)}",
        f"v1={hex_mac(SECRET)}",
        hex_mac(SECRET),
        f"sha256={hex_mac(SECRET)} sha256={hex_mac(SECRET)}",
        "sha256=" + "0" * (MAX_HEADER_CHARS + 1),
    ],
    ids=[
        "missing",
        "empty",
        "wrong",
        "truncated",
        "sha1",
        "wrong-prefix",
        "no-prefix",
        "two",
        "overlong",
    ],
)
def test_github_refusals(header: str | None) -> None:
    assert not verify_github(BODY, header, [SECRET])


def test_github_no_secret_fails() -> None:
    assert not verify_github(BODY, f"sha256={hex_mac(SECRET)}", [])


# --- Standard Webhooks -----------------------------------------------------------------------


def test_standard_webhook_round_trip() -> None:
    secret = new_webhook_secret()
    key = webhook_secret_key(secret)
    headers = standard_webhook_headers(key, "msg_01HXR7Q2M8", 1_715_678_400, BODY)
    assert headers["webhook-timestamp"] == "1715678400"
    assert verify_standard_webhook(
        BODY,
        headers["webhook-id"],
        headers["webhook-timestamp"],
        headers["webhook-signature"],
        [key],
        now=1_715_678_460,
    )


def test_standard_webhook_matches_an_independent_computation() -> None:
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    signed = b"msg_2Fq9.1700000000." + BODY
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert webhook_secret_key(secret) == key
    assert sign_standard_webhook(key, "msg_2Fq9", 1_700_000_000, BODY) == expected


def test_standard_webhook_refusals() -> None:
    key = webhook_secret_key(new_webhook_secret())
    other = webhook_secret_key(new_webhook_secret())
    signature = sign_standard_webhook(key, "msg_1", 1_000, BODY)

    def check(
        body: bytes = BODY,
        msg_id: str | None = "msg_1",
        stamp: str | None = "1000",
        header: str | None = signature,
        keys: list[bytes] | None = None,
        now: float = 1_000,
    ) -> bool:
        return verify_standard_webhook(
            body, msg_id, stamp, header, [key] if keys is None else keys, now=now
        )

    assert check()
    assert check(header=f"v1a,AAAA {signature}")  # other schemes skipped, rotation works
    assert check(keys=[other, key])
    assert not check(keys=[other])
    assert not check(keys=[])
    assert not check(body=BODY + b"\n")
    assert not check(msg_id="msg_2")
    assert not check(msg_id=None)
    assert not check(stamp="1001")
    assert not check(stamp=None)
    assert not check(stamp="01000")  # the sender signed "1000"
    assert not check(header=None)
    assert not check(header=signature.replace("v1,", "v2,"))
    assert not check(header=signature[:-4])
    assert not check(now=1_000 + 301)
    assert not check(now=1_000 - 301)
    assert not check(header=" ".join([signature] * (MAX_SIGNATURES + 1)))


def test_new_secrets_are_fresh_and_well_formed() -> None:
    first, second = new_webhook_secret(), new_webhook_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(webhook_secret_key(first)) == 32


@pytest.mark.parametrize(
    "secret",
    ["plain-secret", "whsec_not*base64", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_bad_secrets_are_refused(secret: str) -> None:
    with pytest.raises(InvalidArgument):
        webhook_secret_key(secret)


@pytest.mark.parametrize("msg_id", ["", "msg.1", "msg 1", "x" * 257])
def test_signing_refuses_ambiguous_ids(msg_id: str) -> None:
    with pytest.raises(InvalidArgument):
        sign_standard_webhook(b"k" * 32, msg_id, 1, BODY)


def test_signing_refuses_empty_key_and_negative_time() -> None:
    with pytest.raises(InvalidArgument):
        sign_standard_webhook(b"", "msg_1", 1, BODY)
    with pytest.raises(InvalidArgument):
        sign_standard_webhook(b"k" * 32, "msg_1", -1, BODY)
