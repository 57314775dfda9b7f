"""SQLite's counts of waiting drafts (migration 0017's triggers into `store_counters`): they
follow every way a draft enters or leaves the queue, whoever changes it, are seeded from the
drafts waiting when the migration runs, and `rca check` notices one that is wrong."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Connection, delete, select, text, update

from rca.domain import Incident
from rca.store import Store
from rca.store.counters import QUEUED, queued_drafts, store_counters
from rca.store.engine import drafts, write_transaction
from rca.store.integrity import check
from rca.store.jobs import DraftJobs
from tests.factories import incident_data

# Triggers on SQLite only; PostgreSQL counts its queue under its lock (tests/store/test_jobs.py).
pytestmark = pytest.mark.sqlite_only
HOUR = timedelta(hours=1)


def kept(conn: Connection) -> dict[str, int]:
    """The queue's counters, without those at 0."""
    rows = conn.execute(select(store_counters).where(store_counters.c.name.like(f"{QUEUED}%")))
    return {str(name): int(value) for name, value in rows if value}


def waiting(conn: Connection) -> dict[str, int]:
    """What the counters should say, counted from the drafts."""
    keys = Counter(
        f"{QUEUED}:{key or ''}"
        for (key,) in conn.execute(
            select(drafts.c.requested_key).where(drafts.c.status == "queued")
        )
    )
    return {QUEUED: sum(keys.values()), **keys} if keys else {}


def assert_counted(store: Store) -> None:
    with store.engine.connect() as conn:
        assert kept(conn) == waiting(conn)
    assert check(store.engine) == []


@pytest.fixture
def incident(store: Store) -> Incident:
    found = Incident.model_validate(incident_data())
    store.save_incident(found, "test")
    return found


def test_the_counts_follow_every_way_into_and_out_of_the_queue(
    store: Store, incident: Incident
) -> None:
    jobs = DraftJobs(store.engine, max_queued=100, max_queued_per_key=100, max_attempts=2)
    for n in range(7):  # three keys, and drafts no key asked for (the web UI's, say)
        key = None if n % 4 == 3 else f"key-{n % 3}"
        jobs.submit(incident.id, "m", "ana", HOUR, requested_key=key)
    assert_counted(store)
    with store.engine.connect() as conn:
        assert kept(conn)[QUEUED] == 7
        assert queued_drafts(conn, "key-0") == (7, kept(conn)[f"{QUEUED}:key-0"])
        assert queued_drafts(conn, None) == (7, 0)
        assert queued_drafts(conn, "never-asked") == (7, 0)
    first = jobs.claim("w1")  # queued -> running
    second = jobs.claim("w1")
    assert first is not None and second is not None
    assert_counted(store)
    assert jobs.requeue(first.id, "w1", "connection cut")  # running -> queued
    assert_counted(store)
    assert jobs.fail(second.id, "w1", "model said no", retryable=False)  # not back
    assert_counted(store)
    with write_transaction(store.engine) as conn:  # by hand: a key changed, a row deleted
        some = conn.execute(select(drafts.c.id).where(drafts.c.status == "queued")).scalars()
        one, other, *_ = list(some)
        conn.execute(update(drafts).where(drafts.c.id == one).values(requested_key="key-9"))
        conn.execute(delete(drafts).where(drafts.c.id == other))
        conn.execute(update(drafts).where(drafts.c.id == one).values(status="queued"))
    assert_counted(store)
    with write_transaction(store.engine) as conn:  # what bench/api.py does between rounds
        dropped = {"status": "failed", "error": "dropped"}
        conn.execute(update(drafts).where(drafts.c.status == "queued").values(**dropped))
    assert_counted(store)
    with store.engine.connect() as conn:
        assert kept(conn) == {}


def test_the_cap_is_read_from_the_counts(store: Store, incident: Incident) -> None:
    jobs = DraftJobs(store.engine, max_queued=3, max_queued_per_key=2)
    jobs.submit(incident.id, "m", "ana", HOUR, requested_key="a")
    jobs.submit(incident.id, "m", "ana", HOUR, requested_key="a")
    with pytest.raises(Exception, match="already has 2 drafts waiting"):
        jobs.submit(incident.id, "m", "ana", HOUR, requested_key="a")
    jobs.submit(incident.id, "m", "bo", HOUR, requested_key="b")
    with pytest.raises(Exception, match="3 drafts are waiting"):
        jobs.submit(incident.id, "m", "cy", HOUR, requested_key="c")
    assert_counted(store)  # the refused ones were rolled back with their counts
    assert jobs.claim("w1") is not None
    jobs.submit(incident.id, "m", "cy", HOUR, requested_key="c")  # room again
    assert_counted(store)


def test_the_migration_counts_the_drafts_already_waiting(store: Store, incident: Incident) -> None:
    from tests.store.test_migrations import _migrate

    jobs = DraftJobs(store.engine)
    for key in ("a", "a", "b", None):
        jobs.submit(incident.id, "m", "ana", HOUR, requested_key=key)
    with store.engine.connect() as conn:
        _migrate(conn, "downgrade", "0016")
        assert kept(conn) == {}
    assert jobs.claim("w1") is not None  # uncounted: no triggers at 0016
    with store.engine.connect() as conn:
        _migrate(conn, "upgrade", "head")
        assert kept(conn) == waiting(conn)
        assert kept(conn)[QUEUED] == 3
    assert_counted(store)
    jobs.submit(incident.id, "m", "ana", HOUR, requested_key="b")
    assert_counted(store)


def test_the_integrity_check_notices_a_wrong_count(store: Store, incident: Incident) -> None:
    DraftJobs(store.engine).submit(incident.id, "m", "ana", HOUR, requested_key="a")
    with write_transaction(store.engine) as conn:
        conn.execute(text("UPDATE store_counters SET value = 5 WHERE name = 'queued_drafts:a'"))
    problems = [str(p) for p in check(store.engine)]
    assert problems == [
        "the counts of waiting drafts kept (on SQLite) are the drafts waiting:"
        " broken by queued_drafts:a = 5"
    ]
