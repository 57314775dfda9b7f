"""`POST /v1/hooks/pagerduty` and `/v1/hooks/github`: signed deliveries, idempotent, refusals."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.worker import DraftWorker
from rca.store.integrations import IntegrationKind
from tests.api.support import Api, running_api

FIXTURES = Path(__file__).parent / "fixtures"
PD_SECRET = "pd-signing-secret-0123456789abcdef"
PD_NEXT = "pd-rotated-secret-fedcba9876543210"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from running_api(tmp_path)


def body_of(kind: str, name: str) -> bytes:
    return (FIXTURES / kind / f"{name}.json").read_bytes()


def signed(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pd_send(api: Api, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-PagerDuty-Signature"] = signature
    return api.client.post("/v1/hooks/pagerduty", content=body, headers=headers)


def gh_send(
    api: Api, body: bytes, secret: str, event: str = "deployment_status", delivery: str = "d-1"
) -> Any:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={signed(secret, body)}",
    }
    return api.client.post("/v1/hooks/github", content=body, headers=headers)


def test_a_pagerduty_incident_opens_grows_a_timeline_and_resolves(api: Api) -> None:
    api.services.integrations.create(IntegrationKind.PAGERDUTY, "pd", PD_SECRET)
    triggered = body_of("pagerduty", "triggered")
    opened = pd_send(api, triggered, f"v1={signed(PD_SECRET, triggered)}")
    assert opened.status_code == 202, opened.text
    assert opened.json()["outcome"] == "opened"
    incident_id = opened.json()["incident_id"]
    assert (
        pd_send(api, triggered, f"v1={signed(PD_SECRET, triggered)}").json()["outcome"] == "repeat"
    )
    outcomes = []
    for name in ("acknowledged", "escalated", "reassigned", "annotated", "resolved"):
        body = body_of("pagerduty", name)
        # During a rotation PagerDuty signs with both secrets; either one known is enough.
        header = f"v1={signed(PD_NEXT, body)},v1={signed(PD_SECRET, body)}"
        answer = pd_send(api, body, header)
        assert answer.status_code == 202, (name, answer.text)
        outcomes.append(answer.json()["outcome"])
    assert outcomes == ["appended", "appended", "appended", "appended", "resolved"]
    incident = api.get(f"/v1/incidents/{incident_id}").json()
    assert incident["title"] == "Checkout p99 latency above 2s in eu-west-1"
    assert incident["services"] == ["checkout-api"] and "pagerduty-4821" in incident["tags"]
    assert incident["resolved_at"] is not None
    kinds = [e["kind"] for e in incident["timeline"]]
    assert kinds == ["alert", "action", "action", "action", "note", "action"]
    sources = api.get(f"/v1/incidents/{incident_id}/sources").json()
    assert sources[0]["detail"]["number"] == 4821
    assert sources[0]["detail"]["url"].startswith("https://")
    # Redelivered after resolution: still one of each.
    resolved = body_of("pagerduty", "resolved")
    assert pd_send(api, resolved, f"v1={signed(PD_SECRET, resolved)}").json()["outcome"] == "repeat"
    assert len(api.get(f"/v1/incidents/{incident_id}").json()["timeline"]) == 6


def test_pagerduty_refusals_store_nothing(api: Api) -> None:
    api.services.integrations.create(IntegrationKind.PAGERDUTY, "pd", PD_SECRET)
    triggered = body_of("pagerduty", "triggered")
    for header in (
        None,
        "",
        "v1=",
        f"v1={signed('another-secret-entirely-0000', triggered)}",
        f"v0={signed(PD_SECRET, triggered)}",
        f"v1={signed(PD_SECRET, triggered + b' ')}",
        "v1=" + "a" * 5000,
    ):
        answer = pd_send(api, triggered, header)
        assert answer.status_code == 401, header
        assert answer.headers["content-type"] == "application/problem+json"
    for name, status, says in [
        ("priority_updated", 202, "not used"),
        ("service_updated", 202, "not used"),
        ("malformed_missing_id", 422, "id"),
        ("malformed_naive_time", 422, "occurred_at"),
        ("malformed_data_not_object", 422, "data"),
    ]:
        body = body_of("pagerduty", name)
        answer = pd_send(api, body, f"v1={signed(PD_SECRET, body)}")
        assert answer.status_code == status, (name, answer.text)
        assert says in answer.text, answer.text
    garbage = b"{not json"
    assert pd_send(api, garbage, f"v1={signed(PD_SECRET, garbage)}").status_code == 422
    # An acknowledgement for an incident never seen opens nothing it cannot title... but one with
    # its incident's data opens it; a resolution alone stores nothing.
    resolved = body_of("pagerduty", "resolved")
    answer = pd_send(api, resolved, f"v1={signed(PD_SECRET, resolved)}").json()
    assert answer["outcome"] == "ignored" and "no open incident" in answer["reason"]
    assert api.get("/v1/incidents").json()["items"] == []


def test_hostile_pagerduty_text_is_kept_as_data(api: Api) -> None:
    api.services.integrations.create(IntegrationKind.PAGERDUTY, "pd", PD_SECRET)
    for name in ("hostile_triggered", "hostile_note"):
        body = body_of("pagerduty", name)
        answer = pd_send(api, body, f"v1={signed(PD_SECRET, body)}")
        assert answer.status_code == 202, answer.text
    items = api.get("/v1/incidents").json()["items"]
    assert len(items) >= 1


def test_github_deployments_feed_the_change_feed_once(api: Api) -> None:
    secret = api.services.integrations.create(IntegrationKind.GITHUB, "gh").credential
    success = body_of("github", "success")
    recorded = gh_send(api, success, secret, delivery="d-1")
    assert recorded.status_code == 202, recorded.text
    assert recorded.json()["outcome"] == "recorded" and recorded.json()["change_id"]
    assert gh_send(api, success, secret, delivery="d-1").json()["outcome"] == "repeat"
    assert gh_send(api, success, secret, delivery="d-2").json()["outcome"] == "repeat"
    failure = gh_send(api, body_of("github", "failure"), secret, delivery="d-3").json()
    assert failure["outcome"] == "recorded"
    pending = gh_send(api, body_of("github", "pending"), secret, delivery="d-4").json()
    assert pending["outcome"] == "ignored" and "pending" in pending["reason"]
    ping = gh_send(api, b'{"zen": "hi"}', secret, event="ping", delivery="d-5").json()
    assert ping["outcome"] == "ignored"
    feed = api.get("/v1/changes").json()["items"]
    assert len(feed) == 2 and {c["service"] for c in feed} == {"checkout"}
    assert all(c["kind"] == "deploy" and c["known_service"] is False for c in feed)
    # Refusals
    assert gh_send(api, success, "wrong-secret-0123456789").status_code == 401
    unsigned = api.client.post(
        "/v1/hooks/github", content=success, headers={"X-GitHub-Event": "deployment_status"}
    )
    assert unsigned.status_code == 401
    bad = gh_send(api, body_of("github", "missing_fields"), secret, delivery="d-6")
    assert bad.status_code == 422
    hostile = gh_send(api, body_of("github", "hostile"), secret, delivery="d-7")
    assert hostile.status_code in (202, 422)
    assert len(api.get("/v1/changes").json()["items"]) == len(feed) + (
        1 if hostile.status_code == 202 and hostile.json()["outcome"] == "recorded" else 0
    )


def test_a_revoked_integration_s_deliveries_get_401(api: Api) -> None:
    made = api.services.integrations.create(IntegrationKind.PAGERDUTY, "pd", PD_SECRET)
    api.services.integrations.revoke(made.info.id)
    triggered = body_of("pagerduty", "triggered")
    assert pd_send(api, triggered, f"v1={signed(PD_SECRET, triggered)}").status_code == 401


def test_a_draft_of_a_pagerduty_incident_runs(api: Api) -> None:
    api.services.integrations.create(IntegrationKind.PAGERDUTY, "pd", PD_SECRET)
    triggered = body_of("pagerduty", "triggered")
    incident_id = pd_send(api, triggered, f"v1={signed(PD_SECRET, triggered)}").json()[
        "incident_id"
    ]
    job = api.post(f"/v1/incidents/{incident_id}/drafts", json={"model": "baseline"}).json()
    assert DraftWorker(api.services, "t").run_once()
    assert api.get(f"/v1/drafts/{job['id']}").json()["status"] == "succeeded"
