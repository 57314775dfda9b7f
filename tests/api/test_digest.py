"""`GET /v1/digest` and the periodic `digest.ready` event: the route in each format (a real
finalization through the API shows as finalized), problems for bad input and no key; the event
delivered signed to a real receiver on loopback once per period, with senders racing in two
"processes", after a restart, only to subscriptions made before the period ended, and never
when digests are off."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.digest_schedule import DigestSchedule, period_before
from api.services import Services
from api.webhook_sender import WebhookSender, WebhookSenders
from rca.config import OutboundSettings, Settings
from rca.integrations.signatures import webhook_secret_key
from rca.llm import ScriptedModel, register_provider
from rca.store import Store
from rca.store.digest_runs import digest_runs
from rca.store.keys import Role
from rca.store.webhooks import RetryPolicy, WebhookEvent, Webhooks
from rca.testing import fake_analyst
from tests.api.receiver import Receiver
from tests.api.support import INCIDENT_FILE, Api, api_settings, draft_and_finalize, free_port

PROBLEM = "application/problem+json"
WEEK = 7 * 86_400
QUICK = {"timeout_s": 2, "poll_s": 0.02, "senders": 0, "digest_every_s": WEEK}


@contextmanager
def digest_api(tmp_path: Path, **outbound: Any) -> Iterator[Api]:
    model = ScriptedModel(reply=fake_analyst)
    register_provider("fake", model)
    chosen = OutboundSettings.model_validate({**QUICK, **outbound})
    settings = api_settings(tmp_path).model_copy(update={"outbound": chosen})
    with TestClient(create_app(settings, workers=0), raise_server_exceptions=False) as client:
        services: Services = client.app.state.services  # type: ignore[attr-defined]
        keys = {role: services.keys.create(f"test {role.value}", role)[0] for role in Role}
        yield Api(client, services, keys, model)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with digest_api(tmp_path) as found:
        yield found


# --- the route -------------------------------------------------------------------------------


def _finalize_one(api: Api) -> str:
    """Draft, review and finalize the example incident through the API; the postmortem id."""
    incident = json.loads(INCIDENT_FILE.read_text())
    incident["title"] = "Checkout *down* for mail me at carol@example.com"
    made = api.post("/v1/incidents", json=incident)
    job = api.post(f"/v1/incidents/{made.json()['id']}/drafts", json={}).json()
    _, final = draft_and_finalize(api, job["id"])
    return str(final["postmortem_id"])


def test_the_digest_in_json_markdown_and_html(api: Api) -> None:
    pm = _finalize_one(api)
    found = api.get("/v1/digest", params={"since": "2d"})
    assert found.status_code == 200 and found.headers["content-type"] == "application/json"
    body = found.json()
    assert [p["id"] for p in body["postmortems"]["items"]] == [pm]
    assert body["postmortems"]["items"][0]["how"] == "finalized"
    assert body["counts"]["postmortems_finalized"] == 1
    assert body["counts"]["new_action_items"] == len(body["new_action_items"]["items"]) > 0
    since = datetime.fromisoformat(body["window"]["since"])
    until = datetime.fromisoformat(body["window"]["until"])
    assert timedelta(days=2) == until - since
    assert "carol@example.com" not in found.text
    md = api.get("/v1/digest", params={"since": "2d", "format": "md"})
    assert md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert (
        md.text.startswith("# Incident digest") and f"(`{pm}`, revision 1) · finalized" in md.text
    )
    html = api.get("/v1/digest", params={"format": "html", "limit": 5})
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.headers["x-content-type-options"] == "nosniff"
    csp = html.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "style-src 'unsafe-inline'" in csp and "sandbox" in csp
    assert "script-src" not in csp and html.text.startswith("<!doctype html>")
    past = api.get("/v1/digest", params={"since": "2020-01-01", "until": "2020-02-01"}).json()
    assert past["postmortems"]["total"] == 0 and past["incidents"]["items"] == []


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"since": "yesterday"}, 400, "since must be a duration"),
        ({"since": "400d"}, 400, "at most 366 days"),
        ({"since": "1d", "until": "2d"}, 400, "since must be before until"),
        ({"since": "2026-01-01T00:00"}, 400, "since needs an offset"),
        ({"since": "0001-01-01T00:00:00+05:00"}, 400, "since is out of range"),
        ({"format": "pdf"}, 422, "format"),
        ({"limit": "0"}, 422, "limit"),
        ({"since": "7" * 100}, 422, "since"),
    ],
)
def test_bad_input_is_a_problem(
    api: Api, params: dict[str, str], status: int, fragment: str
) -> None:
    refused = api.get("/v1/digest", params=params)
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == PROBLEM
    assert fragment in json.dumps(refused.json())


def test_the_digest_needs_a_key(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer rca_nope_nope"}):
        refused = api.client.get("/v1/digest", headers=headers)
        assert refused.status_code == 401 and refused.headers["content-type"] == PROBLEM
    for role in Role:  # the engineer role is enough
        assert api.get("/v1/digest", role).status_code == 200


# --- the periodic event ----------------------------------------------------------------------


class Fleet:
    """Senders as separate processes would run them: each its own store (engine) on the same
    database and its own schedule, going by the test's clock."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.stores: list[Store] = []
        self.senders: list[WebhookSender] = []

    def sender(self) -> WebhookSender:
        store = Store.open(self.settings)
        self.stores.append(store)
        outbound = self.settings.outbound
        webhooks = Webhooks(store.engine, RetryPolicy.of(outbound))
        schedule = DigestSchedule(store, self.settings)
        made = WebhookSender(webhooks, outbound, "fleet", self.clock, digests=schedule)
        self.senders.append(made)
        return made

    def close(self) -> None:
        for each in self.senders:
            each.close()
        for store in self.stores:
            store.close()


@pytest.fixture
def later() -> list[datetime]:
    """The senders' clock: eight days on, so a period has ended since the test began."""
    return [datetime.now(UTC) + timedelta(days=8)]


@pytest.fixture
def receiver(later: list[datetime]) -> Iterator[Receiver]:
    found = Receiver(free_port(), clock=lambda: later[0].timestamp()).start()
    yield found
    found.stop()


@pytest.fixture
def fleet(api: Api, later: list[datetime]) -> Iterator[Fleet]:
    found = Fleet(api.services.settings, lambda: later[0])
    yield found
    found.close()


def subscribe(api: Api, receiver: Receiver, *types: WebhookEvent) -> str:
    body = {"url": receiver.url, "event_types": [t.value for t in types]}
    made = api.post("/v1/webhooks", Role.ADMIN, json=body)
    assert made.status_code == 201, made.text
    receiver.keys.append(webhook_secret_key(made.json()["secret"]))
    return str(made.json()["id"])


def digests_received(receiver: Receiver) -> list[dict[str, Any]]:
    return [r.event for r in receiver.received if r.event["type"] == "digest.ready"]


def test_one_event_per_period_however_many_senders_race_and_restart(
    api: Api, receiver: Receiver, fleet: Fleet, later: list[datetime]
) -> None:
    subscribe(api, receiver, WebhookEvent.DIGEST_READY)
    start, end = period_before(later[0], WEEK)
    assert end.weekday() == 0 and (end.hour, end.minute) == (0, 0)  # Monday, midnight UTC
    incident = json.loads(INCIDENT_FILE.read_text())
    incident.update(id="inc-in-period", started_at=(start + timedelta(hours=1)).isoformat())
    incident.update(detected_at=None, mitigated_at=None, resolved_at=None)
    assert api.post("/v1/incidents", json=incident).status_code == 201
    racers = [fleet.sender() for _ in range(4)]
    gate = threading.Barrier(len(racers))

    def race(sender: WebhookSender) -> None:
        gate.wait()
        sender.run_once()

    threads = [threading.Thread(target=race, args=(s,)) for s in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for each in racers:  # whoever queued it, someone sends it
        each.run_once()
    got = digests_received(receiver)
    assert len(got) == 1 and all(r.valid for r in receiver.received)
    data = got[0]["data"]
    assert data["since"] == start.isoformat().replace("+00:00", "Z")
    assert data["until"] == end.isoformat().replace("+00:00", "Z")
    assert data["every_s"] == WEEK
    assert [i["id"] for i in data["digest"]["incidents"]["items"]] == ["inc-in-period"]
    assert data["digest"]["limit"] == 20
    assert "(`inc-in-period`)" in data["markdown"]
    assert data["links"]["digest"].startswith("/v1/digest?since=")
    # A restart: a new process with no memory of it queues nothing more.
    fleet.sender().run_once()
    fleet.sender().run_once()
    assert len(digests_received(receiver)) == 1
    with api.services.store.engine.connect() as conn:
        rows = conn.execute(digest_runs.select()).all()
    assert [(r.period_end, r.messages) for r in rows] == [(end, 1)]
    # The next period: one more, for the next window.
    later[0] += timedelta(days=7)
    for each in racers:
        each.run_once()
    for each in racers:
        each.run_once()
    got = digests_received(receiver)
    assert len(got) == 2
    assert got[1]["data"]["since"] == got[0]["data"]["until"]
    assert got[1]["data"]["digest"]["incidents"]["total"] == 0


def test_a_subscription_made_after_the_period_ended_waits_for_the_next(
    api: Api, receiver: Receiver, later: list[datetime]
) -> None:
    now = datetime.now(UTC)
    _, end = period_before(now, WEEK)
    subscribe(api, receiver, WebhookEvent.DIGEST_READY)
    if end >= now - timedelta(seconds=5):  # pragma: no cover - a Monday at midnight UTC
        pytest.skip("a period ended as the test began")
    schedule = DigestSchedule(api.services.store, api.services.settings)
    assert schedule.tick(now) == []  # the period is recorded, for nobody
    assert schedule.tick(now) is None
    later[0] = now + timedelta(days=7)
    assert len(schedule.tick(later[0]) or []) == 1


def test_other_subscriptions_and_digests_off_get_nothing(
    api: Api, receiver: Receiver, later: list[datetime]
) -> None:
    subscribe(api, receiver, WebhookEvent.ACTION_ITEM_UPDATED)
    store = api.services.store
    settings = api.services.settings
    assert DigestSchedule(store, settings).tick(later[0]) is None  # nobody wants digests
    subscribe(api, receiver, WebhookEvent.DIGEST_READY)
    off = settings.model_copy(
        update={"outbound": settings.outbound.model_copy(update={"digest_every_s": 0})}
    )
    schedule = DigestSchedule(store, off)
    assert not schedule.on and schedule.tick(later[0]) is None
    senders = WebhookSenders(store.engine, off.outbound.model_copy(update={"senders": 2}), schedule)
    assert [s.digests for s in senders.running] == [None, None]
    senders.stop()
    with store.engine.connect() as conn:
        assert conn.execute(digest_runs.select()).all() == []
    on = WebhookSenders(
        store.engine,
        settings.outbound.model_copy(update={"senders": 1}),
        DigestSchedule(store, settings),
    )
    assert on.running[0].digests is not None
    on.stop()


def test_the_period_setting_is_checked() -> None:
    for bad in (60, 5_400, -1, 32 * 86_400):
        with pytest.raises(ValueError, match="digest_every_s"):
            OutboundSettings(digest_every_s=bad)
    assert OutboundSettings(digest_every_s=3_600).digest_every_s == 3_600
    day_start, day_end = period_before(datetime(2026, 3, 4, 15, tzinfo=UTC), 86_400, 9 * 3_600)
    assert (day_start, day_end) == (
        datetime(2026, 3, 3, 9, tzinfo=UTC),
        datetime(2026, 3, 4, 9, tzinfo=UTC),
    )
