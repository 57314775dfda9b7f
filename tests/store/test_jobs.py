"""Draft jobs' queue caps on the real SQLite store (issue 16, finding 7): counting the queue and
adding to it is one step, for threads of one process and for several processes alike."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest

from rca.config import Settings
from rca.domain import Incident
from rca.errors import Busy
from rca.store import Store
from rca.store.jobs import DraftJobs, JobStatus
from tests.factories import incident_data

HOUR = timedelta(hours=1)


def test_concurrent_submissions_never_pass_the_queue_cap_or_a_key_s_share(
    settings: Settings,
) -> None:
    # Three engines stand for three server processes: each has its own writer lock.
    stores = [Store.open(settings) for _ in range(3)]
    incident = Incident.model_validate(incident_data())
    stores[0].save_incident(incident, "test")
    queues = [DraftJobs(s.engine, max_queued=7, max_queued_per_key=3) for s in stores]
    accepted: Counter[str] = Counter()
    refusals: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(36)

    def submit(n: int) -> None:
        key = f"key-{n % 4}"
        barrier.wait()
        try:
            queues[n % 3].submit(incident.id, "m", f"engineer {key}", HOUR, requested_key=key)
            accepted[key] += 1
        except Busy as err:
            refusals.append(str(err))
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(36)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(accepted.values()) == 7 and max(accepted.values()) <= 3
    assert queues[0].counts()[JobStatus.QUEUED] == 7 and len(refusals) == 29
    for opened in stores:
        opened.close()


def test_a_submission_waiting_for_the_queue_lock_counts_what_committed_meanwhile(
    store: Store, backend: str
) -> None:
    # PostgreSQL's submissions queue on an advisory lock; the count after it must see the
    # job that the lock's holder queued (a count with the snapshot of the statement that
    # waited, taken before the wait, would not, and would let the queue pass its cap).
    if backend != "postgresql":
        pytest.skip("SQLite's writers queue on the one write lock (the tests above)")
    from sqlalchemy import func, select, update

    from rca.store.engine import drafts
    from rca.store.jobs import _SUBMISSIONS_LOCK

    incident = Incident.model_validate(incident_data())
    store.save_incident(incident, "test")
    held = DraftJobs(store.engine).submit(incident.id, "m", "ana", HOUR)
    assert DraftJobs(store.engine).claim("w1") is not None  # running: the queue is empty
    capped = DraftJobs(store.engine, max_queued=1)
    outcome: list[BaseException | None] = []

    def submit() -> None:
        try:
            capped.submit(incident.id, "m", "ben", HOUR, requested_key="ben")
            outcome.append(None)
        except BaseException as err:  # asserted below
            outcome.append(err)

    waiting = threading.Thread(target=submit)
    with store.engine.begin() as conn:
        conn.execute(select(func.pg_advisory_xact_lock(_SUBMISSIONS_LOCK)))
        conn.execute(update(drafts).where(drafts.c.id == held.id).values(status="queued"))
        waiting.start()
        waiting.join(timeout=0.5)
        assert waiting.is_alive()  # it waits for the lock this transaction holds
    waiting.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], Busy), outcome
    assert capped.counts()[JobStatus.QUEUED] == 1


def test_the_refusals_say_which_cap_and_what_to_do(store: Store) -> None:
    incident = Incident.model_validate(incident_data())
    store.save_incident(incident, "test")
    jobs = DraftJobs(store.engine, max_queued=3, max_queued_per_key=2)
    for _ in range(2):
        jobs.submit(incident.id, "m", "ana", HOUR, requested_key="ana")
    with pytest.raises(Busy, match="this API key already has 2 drafts waiting") as mine:
        jobs.submit(incident.id, "m", "ana", HOUR, requested_key="ana")
    assert mine.value.retry_after_s == 30
    jobs.submit(incident.id, "m", "ben", HOUR, requested_key="ben")
    with pytest.raises(Busy, match="3 drafts are waiting") as full:
        jobs.submit(incident.id, "m", "cy", HOUR, requested_key="cy")
    assert "RCA_API__MAX_QUEUED_DRAFTS" in str(full.value)
    # A claimed job no longer waits: its key may queue another.
    assert jobs.claim("worker") is not None
    jobs.submit(incident.id, "m", "ana", HOUR, requested_key="ana")
    # Jobs queued without a key (the command line) count only against the queue's cap.
    unlimited = DraftJobs(store.engine)
    unlimited.submit(incident.id, "m", "cli", HOUR)
    assert jobs.counts()[JobStatus.QUEUED] == 4


def test_the_draft_so_far_is_kept_while_the_job_runs_and_replaced_when_it_succeeds(
    store: Store,
) -> None:
    from datetime import UTC, datetime

    from rca.domain import Draft

    incident = Incident.model_validate(incident_data())
    store.save_incident(incident, "test")
    jobs = DraftJobs(store.engine)
    job = jobs.submit(incident.id, "m", "engineer", HOUR)
    claimed = jobs.claim("w1")
    assert claimed is not None and claimed.partial is None and claimed.draft is None

    def draft(note_count: int) -> Draft:
        return Draft(
            id=job.id,
            incident_id=incident.id,
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            model="m",
            prompt_version=f"p{note_count}",
        )

    assert jobs.report_partial(job.id, "w1", draft(1))
    seen = jobs.get(job.id)
    assert seen.status is JobStatus.RUNNING and seen.draft is None
    assert seen.partial is not None and seen.partial.prompt_version == "p1"
    assert not jobs.report_partial(job.id, "w2", draft(2))  # only the lease holder writes
    assert jobs.get(job.id).partial == draft(1)
    assert jobs.succeed(job.id, "w1", draft(3))
    done = jobs.get(job.id)
    assert done.partial is None and done.draft == draft(3)
    assert not jobs.report_partial(job.id, "w1", draft(4))  # never after it is done
    assert jobs.get(job.id).draft == draft(3)
