"""Outbound webhooks against a real HTTP receiver on loopback (`tests.api.receiver`), which
checks every signature: events from drafting, finalizing and follow-up, retries with the same
`webhook-id` after errors, redirects, timeouts and a receiver down for an hour, dead messages
and an admin's retry, senders stopped, restarted, crashed or racing, and hostile input."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.schemas import encode_cursor
from api.services import Services
from api.webhook_sender import WebhookSender
from rca.config import OutboundSettings
from rca.domain import Postmortem
from rca.integrations.signatures import webhook_secret_key
from rca.llm import ScriptedModel, register_provider
from rca.store.keys import Role
from rca.store.webhooks import DeliveryState, RetryPolicy, WebhookEvent, Webhooks, enqueue
from rca.store.writes import writing
from rca.testing import fake_analyst
from tests.api.receiver import Hang, Receiver
from tests.api.support import INCIDENT_FILE, Api, api_settings, draft_and_finalize, free_port
from tests.factories import postmortem_data

PROBLEM = "application/problem+json"
FAST = {
    "timeout_s": 0.4,
    "base_backoff_s": 0.02,
    "max_backoff_s": 0.1,
    "poll_s": 0.02,
    "max_attempts": 5,
    "senders": 0,
}
"""Short waits; no sender in the app unless a test asks for one (it drives its own)."""


@contextmanager
def outbound_api(tmp_path: Path, **outbound: Any) -> Iterator[Api]:
    """The app (as `running_api` makes it) with outbound settings of its own."""
    model = ScriptedModel(reply=fake_analyst)
    register_provider("fake", model)
    chosen = OutboundSettings.model_validate({**FAST, **outbound})
    settings = api_settings(tmp_path).model_copy(update={"outbound": chosen})
    app = create_app(settings, workers=0)
    with TestClient(app, raise_server_exceptions=False) as client:
        services: Services = app.state.services
        keys = {role: services.keys.create(f"test {role.value}", role)[0] for role in Role}
        yield Api(client, services, keys, model)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with outbound_api(tmp_path) as found:
        yield found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(free_port()).start()
    yield found
    found.stop()


def webhooks_of(api: Api) -> Webhooks:
    return Webhooks(api.services.store.engine, RetryPolicy.of(api.services.settings.outbound))


_SENDERS: list[WebhookSender] = []


@pytest.fixture(autouse=True)
def _close_senders() -> Iterator[None]:
    yield
    while _SENDERS:
        _SENDERS.pop().close()


def sender(
    api: Api, name: str = "test", clock: Callable[[], datetime] | None = None
) -> WebhookSender:
    """A sender on the app's outbox, driven by the test (closed after it)."""
    settings = api.services.settings.outbound
    made = WebhookSender(webhooks_of(api), settings, name, clock or (lambda: datetime.now(UTC)))
    _SENDERS.append(made)
    return made


def subscribe(api: Api, receiver: Receiver, *types: WebhookEvent) -> str:
    """Subscribe the receiver (to every event by default); it learns the signing key."""
    body = {"url": receiver.url, "event_types": [t.value for t in types or WebhookEvent]}
    made = api.post("/v1/webhooks", Role.ADMIN, json=body)
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    receiver.keys.append(webhook_secret_key(made.json()["secret"]))
    return str(made.json()["id"])


def queue(api: Api, count: int) -> list[str]:
    """`count` events queued as a write would queue them."""
    ids: list[str] = []
    with writing(api.services.store.engine) as conn:
        for n in range(count):
            ids += enqueue(conn, WebhookEvent.ACTION_ITEM_UPDATED, {"n": n})
    return ids


def wait_until(check: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def states(api: Api) -> Counter[str]:
    return Counter(d.state.value for d in webhooks_of(api).deliveries(1000))


# --- events --------------------------------------------------------------------------------


def test_drafting_finalizing_and_follow_up_are_delivered_signed(tmp_path: Path) -> None:
    receiver = Receiver(free_port()).start()
    try:
        with outbound_api(tmp_path, senders=1) as api:  # the app's own sender
            subscribe(api, receiver)
            incident = api.post("/v1/incidents", json={**_incident(), "title": "Secret title"})
            job = api.post(f"/v1/incidents/{incident.json()['id']}/drafts", json={}).json()
            draft, final = draft_and_finalize(api, job["id"])
            pm = final["postmortem_id"]
            moved = api.client.patch(
                f"/v1/action-items/{pm}/0",
                json={"status": "in_progress"},
                headers=api.headers(Role.REVIEWER),
            )
            assert moved.status_code == 200
            api.client.patch(  # the same status again changes nothing: no event
                f"/v1/action-items/{pm}/0",
                json={"status": "in_progress"},
                headers=api.headers(Role.REVIEWER),
            )
            items = sum(s["section"] == "action_item" for s in draft["draft"]["suggestions"])
            wait_until(lambda: states(api)["delivered"] == 3 + items)
            delivered = webhooks_of(api).deliveries(100, state=DeliveryState.DELIVERED)
    finally:
        receiver.stop()
    got = receiver.received
    assert len(got) == 3 + items and all(r.valid for r in got)
    assert {r.id for r in got} == {d.id for d in delivered}
    assert all(r.path == "/hooks/rca" and r.content_type == "application/json" for r in got)
    events = {r.event["type"]: r.event for r in got}
    # Every event but the digest, which comes when a period ends (tests/api/test_digest.py).
    assert set(events) == {e.value for e in WebhookEvent} - {WebhookEvent.DIGEST_READY.value}
    succeeded = events["draft.succeeded"]
    assert set(succeeded) == {"type", "timestamp", "data"}
    data = succeeded["data"]
    assert data["draft_id"] == job["id"] and data["incident_revision"] == 1
    assert data["suggestions"] == len(draft["draft"]["suggestions"])
    assert data["links"]["draft"] == f"/v1/drafts/{job['id']}"
    assert b"Secret title" not in next(r.body for r in got if r.event["type"] == "draft.succeeded")
    assert events["postmortem.finalized"]["data"]["postmortem_id"] == pm
    created = [r.event["data"] for r in got if r.event["type"] == "action_item.created"]
    assert [c["item"] for c in created] == list(range(items))
    updated = events["action_item.updated"]["data"]
    assert (updated["status"], updated["previous_status"]) == ("in_progress", "open")


def _incident() -> dict[str, Any]:
    return dict(json.loads(INCIDENT_FILE.read_text()))


def test_a_failed_write_queues_nothing(api: Api, receiver: Receiver) -> None:
    subscribe(api, receiver)
    pm = Postmortem.model_validate(postmortem_data())
    api.services.store.save_postmortem(pm, "test")
    missing = api.client.patch(
        f"/v1/action-items/{pm.id}/99", json={"status": "done"}, headers=api.headers(Role.ADMIN)
    )
    assert missing.status_code == 404
    assert states(api) == Counter()


# --- retries -------------------------------------------------------------------------------


def test_errors_and_redirects_are_retried_with_the_same_id_and_body(
    api: Api, receiver: Receiver
) -> None:
    subscribe(api, receiver)
    receiver.answers = [500, 302]
    [ident] = queue(api, 1)
    send = sender(api)
    assert send.run_once() == 1
    failed = webhooks_of(api).delivery(ident)
    assert (failed.state, failed.attempts, failed.last_status) == (DeliveryState.PENDING, 1, 500)
    assert failed.last_error == "HTTP 500: receiver says no"
    time.sleep(0.15)
    send.run_once()
    redirected = webhooks_of(api).delivery(ident)
    assert redirected.last_status == 302 and "not followed" in (redirected.last_error or "")
    time.sleep(0.15)
    send.run_once()
    done = webhooks_of(api).delivery(ident)
    assert (done.state, done.attempts, done.last_status) == (DeliveryState.DELIVERED, 3, 200)
    assert receiver.ids() == [ident] * 3
    assert len({r.body for r in receiver.received}) == 1
    assert all(r.valid and r.path == "/hooks/rca" for r in receiver.received)


def test_a_receiver_hanging_past_the_timeout_is_retried(api: Api, receiver: Receiver) -> None:
    subscribe(api, receiver)
    receiver.answers = [Hang(2.0)]
    [ident] = queue(api, 1)
    send = sender(api)
    started = time.monotonic()
    send.run_once()
    assert time.monotonic() - started < 1.5
    assert webhooks_of(api).delivery(ident).last_error == "no answer within 0.4 s"
    time.sleep(0.15)
    send.run_once()
    assert webhooks_of(api).delivery(ident).state is DeliveryState.DELIVERED
    assert receiver.ids() == [ident, ident]


def test_a_receiver_down_for_an_hour_loses_nothing_and_keeps_the_ids(tmp_path: Path) -> None:
    hour_api = outbound_api(tmp_path, base_backoff_s=10, max_backoff_s=3_600, max_attempts=24)
    with hour_api as api:
        clock = [datetime.now(UTC)]
        receiver = Receiver(free_port(), clock=lambda: clock[0].timestamp())  # not started
        subscribe(api, receiver)
        ids = queue(api, 3)
        clock[0] = datetime.now(UTC)  # from when they were queued
        send = sender(api, clock=lambda: clock[0])
        down_until = clock[0] + timedelta(hours=1)
        while clock[0] < down_until:
            assert send.run_once() == 3
            found = [webhooks_of(api).delivery(i) for i in ids]
            for one in found:  # exponential backoff with jitter, capped at an hour
                assert one.next_attempt_at is not None and one.state is DeliveryState.PENDING
                wait = (one.next_attempt_at - clock[0]).total_seconds()
                base = min(3_600, 10 * 2 ** (one.attempts - 1))
                assert 0.5 * base <= wait <= 1.5 * base
            clock[0] = max(one.next_attempt_at or clock[0] for one in found)
        pending = [webhooks_of(api).delivery(i) for i in ids]
        assert all("cannot connect" in (d.last_error or "") for d in pending)
        assert 6 <= pending[0].attempts <= 12
        receiver.start()
        try:
            send.run_once()
        finally:
            receiver.stop()
        assert sorted(receiver.ids()) == sorted(ids)  # each once, with its first id
        assert all(r.valid for r in receiver.received)
        assert states(api) == Counter({"delivered": 3})


def test_out_of_attempts_is_dead_until_an_admin_retries_it(api: Api, receiver: Receiver) -> None:
    subscribe(api, receiver)
    receiver.default = 503
    [ident] = queue(api, 1)
    send = sender(api)
    wait_until(lambda: (send.run_once(), webhooks_of(api).delivery(ident))[1].attempts == 5)
    dead = api.get("/v1/webhooks/deliveries?state=dead", Role.ADMIN).json()["items"]
    assert [(d["id"], d["attempts"], d["last_status"]) for d in dead] == [(ident, 5, 503)]
    assert dead[0]["body"]["type"] == "action_item.updated"
    assert api.get("/v1/webhooks/deliveries?state=pending", Role.ADMIN).json()["items"] == []
    assert send.run_once() == 0  # dead stays dead
    assert api.post(f"/v1/webhooks/deliveries/{ident}/retry", Role.REVIEWER).status_code == 403
    receiver.default = 200
    retried = api.post(f"/v1/webhooks/deliveries/{ident}/retry", Role.ADMIN)
    assert retried.status_code == 200
    assert (retried.json()["state"], retried.json()["attempts"]) == ("pending", 0)
    again = api.post(f"/v1/webhooks/deliveries/{ident}/retry", Role.ADMIN)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    send.run_once()
    assert webhooks_of(api).delivery(ident).state is DeliveryState.DELIVERED
    assert receiver.ids() == [ident] * 6
    unknown = api.post("/v1/webhooks/deliveries/msg_nope/retry", Role.ADMIN)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM


def test_disabling_a_subscription_kills_what_waits_for_it(api: Api, receiver: Receiver) -> None:
    ident = subscribe(api, receiver)
    [message] = queue(api, 1)
    gone = api.client.delete(f"/v1/webhooks/{ident}", headers=api.headers(Role.ADMIN))
    assert gone.status_code == 200 and gone.json()["active"] is False
    dead = webhooks_of(api).delivery(message)
    assert (dead.state, dead.last_error) == (DeliveryState.DEAD, "the subscription was disabled")
    assert api.post(f"/v1/webhooks/deliveries/{message}/retry", Role.ADMIN).status_code == 409
    assert queue(api, 1) == []
    assert sender(api).run_once() == 0
    assert receiver.received == []
    listed = api.get("/v1/webhooks", Role.ADMIN).json()
    assert [(s["id"], s["active"]) for s in listed] == [(ident, False)]
    assert "secret" not in listed[0]


# --- senders -------------------------------------------------------------------------------


def test_a_sender_stopped_and_restarted_loses_nothing(api: Api, receiver: Receiver) -> None:
    subscribe(api, receiver)
    ids = queue(api, 30)
    receiver.answers = [Hang(0.05)] * 30  # slow enough to stop it half-way
    first = sender(api, "first")
    first.start()
    wait_until(lambda: len(receiver.received) >= 5)
    first.close()
    halfway = states(api)
    assert 0 < halfway["delivered"] < 30 and halfway["pending"] == 30 - halfway["delivered"]
    # What it had claimed but not sent is due again now, not after its lease.
    assert sender(api, "second").run_once() == min(10, halfway["pending"])
    third = sender(api, "third")
    wait_until(lambda: third.run_once() == 0 and states(api)["pending"] == 0)
    assert sorted(receiver.ids()) == sorted(ids)  # every one, each once


def test_a_crashed_sender_s_claims_come_back_after_the_lease(api: Api, receiver: Receiver) -> None:
    subscribe(api, receiver)
    [ident] = queue(api, 1)
    now = datetime.now(UTC)
    claims = webhooks_of(api).claim_due(now, 10, timedelta(seconds=0.5))  # then it "dies"
    assert [c.delivery.id for c in claims] == [ident]
    assert sender(api).run_once() == 0  # still held
    time.sleep(0.6)
    assert sender(api).run_once() == 1
    assert receiver.ids() == [ident]
    # The dead sender's late report changes nothing: its claim has lapsed.
    assert webhooks_of(api).mark_failed(claims[0], "late", None, datetime.now(UTC)) is None
    assert webhooks_of(api).delivery(ident).state is DeliveryState.DELIVERED


def test_two_senders_never_deliver_one_message_twice(api: Api, receiver: Receiver) -> None:
    subscribe(api, receiver)
    ids = queue(api, 60)
    senders = [sender(api, f"racer-{n}") for n in range(3)]
    for each in senders:
        each.start()
    try:
        wait_until(lambda: states(api)["delivered"] == 60)
    finally:
        for each in senders:
            each.close()
    assert sorted(receiver.ids()) == sorted(ids)
    assert Counter(receiver.ids()).most_common(1)[0][1] == 1


def test_the_app_s_senders_start_and_stop_with_it(tmp_path: Path, receiver: Receiver) -> None:
    with outbound_api(tmp_path, senders=2) as api:
        subscribe(api, receiver)
        ids = queue(api, 5)
        wait_until(lambda: len(receiver.received) == 5)
        threads = {t.name for t in threading.enumerate() if "-webhooks-" in t.name}
        assert len(threads) == 2
    assert not any("-webhooks-" in t.name for t in threading.enumerate())
    assert sorted(receiver.ids()) == sorted(ids)


# --- hostile input -------------------------------------------------------------------------


HOSTILE = [
    ("file:///etc/passwd", ["draft.succeeded"], 400),
    ("http://user:pw@example.com/hook", ["draft.succeeded"], 400),
    ("javascript:alert(1)", ["draft.succeeded"], 400),
    ("http:///no-host", ["draft.succeeded"], 400),
    ("http://example.com:99999/", ["draft.succeeded"], 400),
    ("http://example.com/a b", ["draft.succeeded"], 400),
    ("http://example.com/#frag", ["draft.succeeded"], 400),
    ("http://example.com/" + "a" * 3_000, ["draft.succeeded"], 422),
    ("http://example.com/hook", ["incident.deleted"], 422),
    ("http://example.com/hook", [], 422),
]


def test_hostile_subscriptions_are_refused_and_store_nothing(api: Api) -> None:
    for url, types, status in HOSTILE:
        refused = api.post("/v1/webhooks", Role.ADMIN, json={"url": url, "event_types": types})
        assert refused.status_code == status, (url, types, refused.text)
        assert refused.headers["content-type"] == PROBLEM
    assert api.get("/v1/webhooks", Role.ADMIN).json() == []


def test_only_admins_reach_webhooks(api: Api) -> None:
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["draft.succeeded"]}
    for role in (Role.ENGINEER, Role.REVIEWER):
        assert api.post("/v1/webhooks", role, json=body).status_code == 403
        assert api.get("/v1/webhooks", role).status_code == 403
        assert api.get("/v1/webhooks/deliveries?state=dead", role).status_code == 403
    assert api.post("/v1/webhooks", None, json=body).status_code == 401
    unknown = api.client.delete("/v1/webhooks/whs_nope", headers=api.headers(Role.ADMIN))
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    assert api.get("/v1/webhooks/deliveries?state=lost", Role.ADMIN).status_code == 422
    assert api.get("/v1/webhooks/deliveries?cursor=zzz", Role.ADMIN).status_code == 400
    naive = encode_cursor("2026-01-01T00:00:00", "x")  # a time without an offset: not ours
    assert api.get(f"/v1/webhooks/deliveries?cursor={naive}", Role.ADMIN).status_code == 400
