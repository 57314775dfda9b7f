"""`POST /v1/hooks/alertmanager` end to end with the real Alertmanager, and its refusals."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rca.config import IntegrationSettings
from rca.store.integrations import IntegrationKind
from rca.store.keys import Role
from tests.api.support import Api, api_settings, running_api, served
from tests.integrations.alertmanager_server import running_alertmanager

FIXTURES = Path(__file__).parent / "fixtures" / "alertmanager"
HOOK = "/v1/hooks/alertmanager"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from running_api(tmp_path)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def token_of(api: Api) -> str:
    return api.services.integrations.create(IntegrationKind.ALERTMANAGER, "prod am").credential


def send(api: Api, token: str, body: Any) -> Any:
    return api.client.post(HOOK, json=body, headers={"Authorization": f"Bearer {token}"})


def wait_for(check: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_real_alertmanager_opens_appends_and_resolves_an_incident(tmp_path: Path) -> None:
    app = create_app(api_settings(tmp_path), workers=0)
    with served(app) as base, ExitStack() as stack:
        services = app.state.services
        token = services.integrations.create(IntegrationKind.ALERTMANAGER, "am").credential
        key = services.keys.create("reader", Role.ENGINEER)[0]
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"})
        stack.callback(client.close)
        started = datetime.now(UTC) - timedelta(minutes=3)
        alert = {
            "labels": {
                "alertname": "CheckoutErrors",
                "service": "checkout",
                "severity": "critical",
                "pod": "a",
            },
            "annotations": {"summary": "5xx ratio 40% on checkout"},
            "generatorURL": "http://prometheus.internal/graph?g0.expr=rate",
            "startsAt": started.isoformat(),
        }
        second = {**alert, "labels": {**alert["labels"], "pod": "b"}}
        with running_alertmanager(tmp_path / "am", f"{base}{HOOK}", token) as am:
            am.push([alert])

            def opened() -> Any:
                items = client.get("/v1/incidents").json()["items"]
                return items[0] if items else None

            summary = wait_for(opened, "the incident Alertmanager opens")
            url = f"/v1/incidents/{summary['id']}"
            first = client.get(url).json()
            assert first["severity"] == "SEV2" and first["services"] == ["checkout"]
            assert [a["name"] for a in first["alerts"]] == ["CheckoutErrors"]
            assert first["alerts"][0]["labels"]["generator_url"].startswith("http://prometheus")
            am.push([alert, second])  # one repeat, one new alert of the same group
            grown = wait_for(
                lambda: len(client.get(url).json()["alerts"]) == 2 and client.get(url).json(),
                "the second alert",
            )
            assert len({a["id"] for a in grown["alerts"]}) == 2
            am.resolve([alert, second])
            done = wait_for(
                lambda: (d := client.get(url).json())["resolved_at"] and d, "the resolution"
            )
            assert done["mitigated_at"] == done["resolved_at"]
            assert (
                len(done["alerts"]) == 2
            )  # the resolved notification repeated them: no duplicates
            revisions = client.get(f"{url}/revisions").json()
            assert revisions[0]["actor"] == "am" and revisions[-1]["change"]["fields"][:2] == [
                "mitigated_at",
                "resolved_at",
            ]
            sources = client.get(f"{url}/sources").json()
            assert sources[0]["source"] == "alertmanager" and sources[0]["open"] is False
            # The group fires again after it resolved: a new incident.
            again = {**alert, "startsAt": datetime.now(UTC).isoformat()}
            am.push([again])
            wait_for(
                lambda: len(client.get("/v1/incidents").json()["items"]) == 2, "a new incident"
            )


def test_repeats_label_changes_truncation_and_resolved_only_notifications(api: Api) -> None:
    token = token_of(api)
    opened = send(api, token, fixture("firing.json"))
    assert opened.status_code == 202, opened.text
    body = opened.json()
    assert body["outcome"] == "opened" and len(body["added"]) == 2
    incident_id = body["incident_id"]
    repeat = send(api, token, fixture("repeat.json")).json()
    assert repeat["outcome"] == "appended" and repeat["incident_id"] == incident_id
    assert len(repeat["added"]) == 1
    assert send(api, token, fixture("repeat.json")).json()["outcome"] == "unchanged"
    stored = api.get(f"/v1/incidents/{incident_id}").json()
    assert len(stored["alerts"]) == 3
    assert len(api.get(f"/v1/incidents/{incident_id}/revisions").json()) == 2
    changed = send(api, token, fixture("labels_changed.json")).json()
    assert changed["outcome"] in ("appended", "opened")
    truncated = send(api, token, fixture("truncated.json")).json()
    assert truncated["outcome"] in ("appended", "opened")
    # A resolved notification for a group never seen firing stores nothing.
    stray = {**fixture("resolved.json"), "groupKey": '{}:{alertname="NeverSeen"}'}
    before = api.get("/v1/incidents").json()["items"]
    answer = send(api, token, stray)
    assert answer.status_code == 202 and answer.json()["outcome"] == "ignored"
    assert "no open incident" in answer.json()["reason"]
    assert api.get("/v1/incidents").json()["items"] == before


def test_wrong_tokens_and_bad_payloads_store_nothing(api: Api) -> None:
    token = token_of(api)
    good = fixture("firing.json")
    pd = api.services.integrations.create(IntegrationKind.GITHUB, "gh").credential
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": f"Bearer {token[:-3]}xyz"},
        {"Authorization": f"Bearer {api.keys[next(iter(api.keys))]}"},  # an API key is not a token
        {"Authorization": f"Bearer {pd}"},
        {"Authorization": f"Basic {token}"},
    ):
        refused = api.client.post(HOOK, json=good, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["content-type"] == "application/problem+json"
    revoked = api.services.integrations.create(IntegrationKind.ALERTMANAGER, "old")
    api.services.integrations.revoke(revoked.info.id)
    assert send(api, revoked.credential, good).status_code == 401
    for bad, where in [
        ({**good, "version": "3"}, "version"),
        ({k: v for k, v in good.items() if k != "groupKey"}, "groupKey"),
        (
            {**good, "alerts": [{**good["alerts"][0], "startsAt": "2026-03-01T10:00:00"}]},
            "startsAt",
        ),
        ({**good, "alerts": "many"}, "alerts"),
        ({**good, "alerts": [good["alerts"][0]] * 1001}, "alerts"),
    ]:
        answer = send(api, token, bad)
        assert answer.status_code == 422, answer.text
        assert where in answer.text
    not_json = api.client.post(
        HOOK,
        content=b"{nope",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    assert api.get("/v1/incidents").json()["items"] == []


def test_hostile_alert_text_is_kept_as_data(api: Api) -> None:
    token = token_of(api)
    answer = send(api, token, fixture("hostile.json"))
    assert answer.status_code == 202, answer.text
    stored = api.get(f"/v1/incidents/{answer.json()['incident_id']}").json()
    assert stored["alerts"] and all(a["source"] == "alertmanager" for a in stored["alerts"])


def test_the_label_mapping_is_a_setting_and_a_bad_one_says_so(tmp_path: Path) -> None:
    mapping = {"service_labels": ["region"], "severity_values": {"critical": "SEV1"}}
    settings = api_settings(tmp_path / "a").model_copy(
        update={"integrations": IntegrationSettings(alertmanager=mapping)}
    )
    with TestClient(create_app(settings, workers=0)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        token = services.integrations.create(IntegrationKind.ALERTMANAGER, "am").credential
        answer = client.post(
            HOOK, json=fixture("firing.json"), headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 202, answer.text
        stored = services.store.get_incident(answer.json()["incident_id"])
        assert stored.services == ["eu-west-1"] and stored.severity.value == "SEV1"
    bad = api_settings(tmp_path / "b").model_copy(
        update={
            "integrations": IntegrationSettings(alertmanager={"severity_values": {"x": "SEV9"}})
        }
    )
    with TestClient(create_app(bad, workers=0), raise_server_exceptions=False) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        token = services.integrations.create(IntegrationKind.ALERTMANAGER, "am").credential
        answer = client.post(
            HOOK, json=fixture("firing.json"), headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 503
        assert "RCA_INTEGRATIONS__ALERTMANAGER" in answer.json()["detail"]
        assert services.store.list_incidents() == []
