"""Webhook signatures: checking what PagerDuty and GitHub send, signing what we send.

Inbound, each check takes the raw request body (the exact bytes received, before any JSON
parsing), the signature header as received (None when absent) and the secrets currently
accepted (several while a secret is being rotated), and answers True or False. Anything
unexpected in the header (too long, too many entries, not hex, the wrong length) is a plain
False, never an exception, so a caller cannot turn a malformed header into an error page.

- PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`, the HMAC-SHA256 of the
  body under each signing secret; one matching `v1` entry is enough, other versions are skipped.
- GitHub: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the body.

Outbound, `sign_standard_webhook` follows the Standard Webhooks specification: the signed
content is `{id}.{timestamp}.{body}`, the signature is `v1,<base64 HMAC-SHA256>`, and a secret
is shown to people as `whsec_<base64 of the key bytes>`.

Hex digests are compared as bytes, so upper-case hex is accepted; every comparison is
constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _random
import time
from collections.abc import Iterator, Sequence

from rca.errors import InvalidArgument

MAX_HEADER_CHARS = 4096
"""A signature header longer than this is refused without being read."""
MAX_SIGNATURES = 20
"""A signature header with more entries than this is refused."""
SECRET_PREFIX = "whsec_"
"""How a Standard Webhooks signing secret is written."""
SECRET_BYTES = 32
"""Key length of a new Standard Webhooks secret (the specification asks for 24 to 64)."""
TIMESTAMP_TOLERANCE_S = 300
"""How far a Standard Webhooks timestamp may be from now, either way, in seconds."""

_DIGEST_BYTES = hashlib.sha256().digest_size
_MIN_KEY_BYTES = 24
_MAX_KEY_BYTES = 64
_MSG_ID = re.compile(r"^[A-Za-z0-9_:-]{1,256}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


# --- shared pieces ---------------------------------------------------------------------------


def _hmac_sha256(key: bytes, content: bytes) -> bytes:
    return hmac.new(key, content, hashlib.sha256).digest()


def _keys(secrets: Sequence[str]) -> list[bytes]:
    """The usable secrets as key bytes; a blank secret never verifies anything."""
    return [secret.encode("utf-8") for secret in secrets if secret]


def _from_hex(value: str) -> bytes | None:
    """A SHA-256 digest written in hex (either case), or None if it is not one."""
    if len(value) != 2 * _DIGEST_BYTES:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _entries(header: str | None, separator: str | None) -> list[str] | None:
    """The header's entries, stripped; None when the header is absent or over the bounds."""
    if header is None or not header.strip() or len(header) > MAX_HEADER_CHARS:
        return None
    entries = [entry.strip() for entry in header.strip().split(separator)]
    if len(entries) > MAX_SIGNATURES:
        return None
    return [entry for entry in entries if entry]


def _matches(expected: Sequence[bytes], offered: Sequence[bytes]) -> bool:
    """True when any offered digest equals any expected one; every pair is compared."""
    found = False
    for want in expected:
        for got in offered:
            found |= hmac.compare_digest(want, got)
    return found


# --- inbound ---------------------------------------------------------------------------------


def verify_pagerduty(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """Whether `X-PagerDuty-Signature` holds a `v1` HMAC-SHA256 of `body` under any secret."""
    keys = _keys(secrets)
    entries = _entries(header, ",")
    if not keys or entries is None:
        return False
    offered: list[bytes] = []
    for entry in entries:
        version, sep, value = entry.partition("=")
        if not sep:
            return False
        if version != "v1":
            continue
        digest = _from_hex(value)
        if digest is not None:
            offered.append(digest)
    return _matches([_hmac_sha256(key, body) for key in keys], offered)


def verify_github(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """Whether `X-Hub-Signature-256` is `sha256=` and the HMAC-SHA256 of `body` under any
    secret."""
    keys = _keys(secrets)
    entries = _entries(header, None)
    if not keys or entries is None or len(entries) != 1:
        return False
    algorithm, sep, value = entries[0].partition("=")
    digest = _from_hex(value) if sep and algorithm == "sha256" else None
    if digest is None:
        return False
    return _matches([_hmac_sha256(key, body) for key in keys], [digest])


# --- Standard Webhooks -----------------------------------------------------------------------


def new_webhook_secret() -> str:
    """A fresh random signing secret, written `whsec_<base64>`."""
    key = _random.token_bytes(SECRET_BYTES)
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def webhook_secret_key(secret: str) -> bytes:
    """The key bytes of a secret written `whsec_<base64>`; InvalidArgument if it is not one."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
        raise InvalidArgument(f"a webhook secret is written {SECRET_PREFIX}<base64>")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("the webhook secret is not valid base64") from None
    if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
        raise InvalidArgument(
            f"a webhook secret holds {_MIN_KEY_BYTES} to {_MAX_KEY_BYTES} bytes, "
            f"this one {len(key)}"
        )
    return key


def _signed_content(msg_id: str, timestamp: str, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode("ascii") + body


def sign_standard_webhook(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value (`v1,<base64>`) for one delivery of `body`.

    `secret` is the key bytes (see `webhook_secret_key`); `msg_id` must not hold a full stop,
    which would make the signed content ambiguous; `timestamp` is in Unix seconds."""
    if not secret:
        raise InvalidArgument("the webhook secret is empty")
    if not _MSG_ID.match(msg_id):
        raise InvalidArgument("a webhook id is 1-256 letters, digits, '_', ':' or '-'")
    if timestamp < 0:
        raise InvalidArgument("a webhook timestamp is seconds since 1970, not negative")
    digest = _hmac_sha256(secret, _signed_content(msg_id, str(timestamp), body))
    return "v1," + base64.b64encode(digest).decode("ascii")


def standard_webhook_headers(
    secret: bytes, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery of `body`."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard_webhook(secret, msg_id, timestamp, body),
    }


def _v1_signatures(header: str | None) -> Iterator[bytes]:
    entries = _entries(header, None)
    for entry in entries or ():
        version, sep, value = entry.partition(",")
        if not sep or version != "v1":
            continue
        try:
            digest = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(digest) == _DIGEST_BYTES:
            yield digest


def verify_standard_webhook(
    body: bytes,
    msg_id: str | None,
    timestamp: str | None,
    header: str | None,
    secrets: Sequence[bytes],
    *,
    now: float | None = None,
    tolerance_s: int = TIMESTAMP_TOLERANCE_S,
) -> bool:
    """Whether a delivery carries a `v1` signature of `{msg_id}.{timestamp}.{body}` under any
    of `secrets` (key bytes), with a timestamp within `tolerance_s` of `now` (default: the
    clock). `msg_id`, `timestamp` and `header` are the `webhook-*` headers as received."""
    keys = [key for key in secrets if key]
    if not keys or msg_id is None or timestamp is None or not _MSG_ID.match(msg_id):
        return False
    if not _TIMESTAMP.match(timestamp):
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_s:
        return False
    # The timestamp as received: the sender signed its text, not our reading of it.
    content = _signed_content(msg_id, timestamp, body)
    return _matches([_hmac_sha256(key, content) for key in keys], list(_v1_signatures(header)))
