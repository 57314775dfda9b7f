"""Concurrent workers claim each piece of work once (on PostgreSQL: `FOR UPDATE SKIP LOCKED`;
on SQLite: the writer lock), draft jobs and outbound webhook messages alike, and concurrent
first notifications of one alert group open one incident. Three engines stand for three
processes."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from rca.config import Settings
from rca.domain import Incident
from rca.errors import Conflict
from rca.integrations.alertmanager import LabelMapping, parse_notification, translate
from rca.store import Store
from rca.store.intake import receive_alert_group
from rca.store.integrations import IntegrationKind, Integrations
from rca.store.jobs import DraftJobs
from rca.store.webhooks import WebhookEvent, Webhooks, enqueue
from rca.store.writes import now, writing
from tests.factories import incident_data

HOUR = timedelta(hours=1)
ALERTMANAGER_FIXTURES = Path(__file__).parents[1] / "integrations" / "fixtures" / "alertmanager"


@pytest.fixture
def stores(settings: Settings) -> Iterator[list[Store]]:
    opened = [Store.open(settings) for _ in range(3)]
    yield opened
    for store in opened:
        store.close()


def _race(workers: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def run(n: int) -> None:
        barrier.wait()
        try:
            work(n)
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_concurrent_workers_claim_each_job_once(stores: list[Store]) -> None:
    incident = Incident.model_validate(incident_data())
    stores[0].save_incident(incident, "test")
    queues = [DraftJobs(s.engine, lease=HOUR) for s in stores]
    submitted = {queues[0].submit(incident.id, "m", "e", HOUR).id for _ in range(12)}
    claimed: Counter[str] = Counter()

    def work(n: int) -> None:
        while job := queues[n % 3].claim(f"worker-{n}"):
            claimed[job.id] += 1

    _race(6, work)
    assert set(claimed) == submitted and set(claimed.values()) == {1}


def test_concurrent_senders_claim_each_message_once(stores: list[Store]) -> None:
    Webhooks(stores[0].engine).create("https://a.example/h", ["draft.succeeded"])
    with writing(stores[0].engine) as conn:
        queued = {
            i for n in range(20) for i in enqueue(conn, WebhookEvent.DRAFT_SUCCEEDED, {"n": n})
        }
    senders = [Webhooks(s.engine) for s in stores]
    claimed: Counter[str] = Counter()

    def work(n: int) -> None:
        while claims := senders[n % 3].claim_due(now(), 3, HOUR):
            claimed.update(c.delivery.id for c in claims)

    _race(6, work)
    assert set(claimed) == queued and set(claimed.values()) == {1}


def test_first_notifications_of_one_group_at_once_open_one_incident(stores: list[Store]) -> None:
    """Of two first notifications at once, one opens the incident; the other waits for it and
    appends (SQLite), or collides (409, PostgreSQL) and appends when sent again."""
    body = (ALERTMANAGER_FIXTURES / "firing.json").read_bytes()
    group = translate(parse_notification(body), LabelMapping())
    hook = Integrations(stores[0].engine).create(IntegrationKind.ALERTMANAGER, "am").info
    outcomes: list[str] = []

    def work(n: int) -> None:
        try:
            outcomes.append(receive_alert_group(stores[n % 3].engine, hook, group).outcome)
        except Conflict:
            outcomes.append(receive_alert_group(stores[n % 3].engine, hook, group).outcome)

    _race(4, work)
    assert sorted(outcomes) == ["opened", "unchanged", "unchanged", "unchanged"]
    assert len(stores[0].list_incidents()) == 1
