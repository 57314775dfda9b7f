"""Durable draft jobs: queued, claimed by a worker under a lease, finished or failed.

A worker claims the oldest queued job and holds a lease it renews with every progress report.
A worker that dies stops renewing: once the lease has expired the job goes back to the queue
(or, after `max_attempts`, fails as retryable), so no job stays "running" forever. A job past
its deadline fails. Only the lease holder may report progress or finish a job.

Submissions respect two caps, the jobs waiting in all and those one API key has waiting; the
insert and the count are one transaction (`_make_room`), so concurrent submissions never pass
them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)

from rca.domain import Draft, new_id
from rca.errors import Busy, NotFound
from rca.store import audit, webhook_events
from rca.store.counters import queued_drafts
from rca.store.engine import drafts, incidents, read_transaction, write_transaction
from rca.store.job_rows import DraftJob as DraftJob
from rca.store.job_rows import JobStatus as JobStatus
from rca.store.job_rows import job_of
from rca.store.reconnect import again_if_cut
from rca.store.reconnect import connection_lost as connection_lost

RETRY_AFTER_S = 30
"""What a refused submission is told to wait (Retry-After), in seconds."""
_SUBMISSIONS_LOCK = 0x7263612D6A6F6273  # "rca-jobs": the PostgreSQL advisory lock's key


_JOB = select(drafts).where(drafts.c.id == bindparam("ident"))
"""One job (built once: one built per call costs more than running it)."""
_KNOWN = select(incidents.c.id).where(incidents.c.id == bindparam("incident"))
_ADD = insert(drafts)
_LOCKED_WAITING = text("SELECT total, mine FROM rca_waiting_drafts(:lock, :own, :key)")
"""On PostgreSQL, the jobs waiting but the one being submitted, and how many of them one key
asked for, counted once the submissions' advisory lock is held."""


class DraftJobs:
    """The job table."""

    def __init__(
        self,
        engine: Engine,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 2,
        max_queued: int | None = None,
        max_queued_per_key: int | None = None,
    ) -> None:
        self.engine = engine
        self.lease = lease
        self.max_attempts = max_attempts
        self.max_queued = max_queued
        self.max_queued_per_key = max_queued_per_key

    def submit(
        self,
        incident_id: str,
        model: str,
        requested_by: str,
        deadline: timedelta,
        requested_key: str | None = None,
    ) -> DraftJob:
        """Queue a draft of a stored incident for `requested_key` (the API key asking, if
        any), or refuse with Busy when the queue or the key's share of it is full."""
        now = datetime.now(UTC)
        ident = new_id("draft")
        job = {
            "id": ident,
            "incident_id": incident_id,
            "status": JobStatus.QUEUED.value,
            "progress": 0.0,
            "message": "queued",
            "model": model,
            "requested_by": requested_by,
            "requested_key": requested_key,
            "attempts": 0,
            "deadline_at": now + deadline,
            "retryable": False,
            "version": 0,
            "created_at": now,
            "updated_at": now,
        }
        with write_transaction(self.engine) as conn:
            known = conn.execute(_KNOWN, {"incident": incident_id}).scalar_one_or_none()
            if known is None:
                raise NotFound("incident", incident_id)
            conn.execute(_ADD, job)
            audit.record(conn, requested_by, "draft.requested", "draft", ident, model=model)
            added = job_of(conn.execute(_JOB, {"ident": ident}).one())
            self._make_room(conn, ident, requested_key)
            return added

    def _make_room(self, conn: Connection, ident: str, requested_key: str | None) -> None:
        """Refuse (Busy, which rolls the submission back) unless the queue and the key's share
        of it had room for job `ident`, counted last in its write transaction. On SQLite the
        transaction holds the only write lock, and triggers keep the counts (two rows to read,
        however long the queue). On PostgreSQL, where two transactions could each
        count room for one more, every submission takes one transaction-scoped advisory lock
        and then counts, in one round trip (migration 0015's function; its count has a snapshot
        of its own, so it sees every submission that committed while this one waited): the lock
        is held for the count and the commit, not for the insert before them."""
        if self.max_queued is None and self.max_queued_per_key is None:
            return
        if conn.dialect.name == "postgresql":
            counted = conn.execute(
                _LOCKED_WAITING, {"lock": _SUBMISSIONS_LOCK, "own": ident, "key": requested_key}
            )
            total, own = counted.one()
        else:  # kept by triggers; they count the job being submitted too
            total, own = queued_drafts(conn, requested_key)
            total, own = total - 1, max(own - 1, 0)
        per_key = self.max_queued_per_key
        if requested_key is not None and per_key is not None and own >= per_key:
            raise Busy(
                f"this API key already has {own} drafts waiting, the most one key may queue;"
                f" send it again once one has started (in {RETRY_AFTER_S} s or later), or ask"
                " the operator to raise RCA_API__MAX_QUEUED_DRAFTS_PER_KEY",
                retry_after_s=RETRY_AFTER_S,
            )
        if self.max_queued is not None and total >= self.max_queued:
            raise Busy(
                f"{total} drafts are waiting, the most the queue holds; send it again in"
                f" {RETRY_AFTER_S} s, or ask the operator to raise RCA_API__MAX_QUEUED_DRAFTS",
                retry_after_s=RETRY_AFTER_S,
            )

    def get(self, ident: str) -> DraftJob:
        """One job (NotFound if unknown)."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(_JOB, {"ident": ident}).one_or_none()
        if row is None:
            raise NotFound("draft", ident)
        return job_of(row)

    def for_incident(self, incident_id: str) -> list[DraftJob]:
        """The incident's drafts, newest first."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(drafts)
                .where(drafts.c.incident_id == incident_id)
                .order_by(drafts.c.created_at.desc(), drafts.c.id.desc())
            ).all()
        return [job_of(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Jobs per status."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(drafts.c.status, func.count()).group_by(drafts.c.status)
            ).all()
        found = {status.value: 0 for status in JobStatus}
        found.update({str(status): int(count) for status, count in rows})
        return found

    def claim(self, worker: str) -> DraftJob | None:
        """Lease the oldest queued job to `worker` (after requeueing expired leases)."""
        now = datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            self._reap(conn, now)
            row = conn.execute(
                select(drafts)
                .where(drafts.c.status == JobStatus.QUEUED.value)
                .order_by(drafts.c.created_at, drafts.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).one_or_none()
            if row is None:
                return None
            conn.execute(
                update(drafts)
                .where(drafts.c.id == row.id)
                .values(
                    status=JobStatus.RUNNING.value,
                    lease_owner=worker,
                    lease_expires_at=now + self.lease,
                    attempts=row.attempts + 1,
                    message="started",
                    updated_at=now,
                )
            )
            return job_of(conn.execute(select(drafts).where(drafts.c.id == row.id)).one())

    def reap(self) -> int:
        """Requeue or fail jobs whose lease or deadline has passed; how many changed."""
        with write_transaction(self.engine) as conn:
            return self._reap(conn, datetime.now(UTC))

    def _reap(self, conn: Connection, now: datetime) -> int:
        late = conn.execute(
            update(drafts)
            .where(
                drafts.c.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
                drafts.c.deadline_at < now,
            )
            .values(
                status=JobStatus.FAILED.value,
                error="deadline passed before the draft was finished",
                retryable=True,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        ).rowcount
        lost = and_(drafts.c.status == JobStatus.RUNNING.value, drafts.c.lease_expires_at < now)
        failed = conn.execute(
            update(drafts)
            .where(lost, drafts.c.attempts >= self.max_attempts)
            .values(
                status=JobStatus.FAILED.value,
                error="the worker stopped reporting (lease expired) too many times",
                retryable=True,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        ).rowcount
        requeued = conn.execute(
            update(drafts)
            .where(lost, drafts.c.attempts < self.max_attempts)
            .values(
                status=JobStatus.QUEUED.value,
                message="requeued: the worker stopped reporting",
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        ).rowcount
        return int(late + failed + requeued)

    def report(self, ident: str, worker: str, progress: float, message: str) -> bool:
        """Record progress and renew the lease; False if `worker` no longer holds it."""
        return self._renew(
            ident, worker, progress=max(0.0, min(1.0, progress)), message=message[:500]
        )

    def report_partial(self, ident: str, worker: str, draft: Draft) -> bool:
        """Store the draft so far (what a reviewer may read while the job runs) and renew the
        lease; False if `worker` no longer holds it."""
        return self._renew(ident, worker, document=draft.model_dump_json())

    def record_incident_revision(self, ident: str, worker: str, revision: int) -> bool:
        """Record which revision of the incident the draft is written from; False if `worker`
        no longer holds the lease."""
        return self._renew(ident, worker, incident_revision=revision)

    def _renew(self, ident: str, worker: str, **values: Any) -> bool:
        """Write `values` and renew the lease, if `worker` still holds it."""

        def write(_try: int) -> bool:
            now = datetime.now(UTC)
            with write_transaction(self.engine) as conn:
                changed = conn.execute(
                    update(drafts)
                    .where(*self._held(ident, worker))
                    .values(**values, lease_expires_at=now + self.lease, updated_at=now)
                ).rowcount
            return bool(changed)

        return again_if_cut(write)

    def succeed(self, ident: str, worker: str, draft: Draft) -> bool:
        """Store the finished draft (version 1); False if the lease was lost meanwhile."""
        document = draft.model_dump_json()

        def write(attempt: int) -> bool:
            now = datetime.now(UTC)
            with write_transaction(self.engine) as conn:
                if attempt and self._stored(conn, ident, document):
                    return True  # the cut came after the commit: the draft is in
                changed = conn.execute(
                    update(drafts)
                    .where(*self._held(ident, worker))
                    .values(
                        status=JobStatus.SUCCEEDED.value,
                        progress=1.0,
                        message="done",
                        document=document,
                        version=draft.version,
                        lease_owner=None,
                        lease_expires_at=None,
                        updated_at=now,
                    )
                ).rowcount
                if changed:
                    audit.record(
                        conn,
                        "worker:" + worker,
                        "draft.created",
                        "draft",
                        ident,
                        model=draft.model,
                        prompt_version=draft.prompt_version,
                        similar=draft.similar_postmortem_ids,
                        prompt_tokens=draft.usage.prompt_tokens,
                        completion_tokens=draft.usage.completion_tokens,
                        cost_usd=draft.usage.cost_usd,
                        latency_s=round(draft.usage.latency_s, 3),
                    )
                    webhook_events.draft_succeeded(conn, ident, draft)
            return bool(changed)

        return again_if_cut(write)

    @staticmethod
    def _stored(conn: Connection, ident: str, document: str) -> bool:
        row = conn.execute(
            select(drafts.c.status, drafts.c.document).where(drafts.c.id == ident)
        ).one_or_none()
        return (
            row is not None and row.status == JobStatus.SUCCEEDED.value and row.document == document
        )

    def fail(self, ident: str, worker: str, error: str, retryable: bool) -> bool:
        """Mark the job failed; False if the lease was lost meanwhile."""
        return self._end(ident, worker, JobStatus.FAILED, error=error[:2_000], retryable=retryable)

    def requeue(self, ident: str, worker: str, reason: str) -> bool:
        """Give the job back to the queue, for an attempt that did not fail of its own (the
        database connection was cut, say); after `max_attempts`, fail it as retryable with
        `reason` instead. False if `worker` no longer holds the lease."""
        with read_transaction(self.engine) as conn:
            attempts = conn.execute(
                select(drafts.c.attempts).where(*self._held(ident, worker))
            ).scalar_one_or_none()
        if attempts is None:
            return False
        if attempts < self.max_attempts:
            return self._end(ident, worker, JobStatus.QUEUED, message=f"requeued: {reason}"[:500])
        error = f"{reason} ({attempts} attempts)"[:2_000]
        return self._end(ident, worker, JobStatus.FAILED, error=error, retryable=True)

    def _end(self, ident: str, worker: str, status: JobStatus, **values: Any) -> bool:
        """Move a held job to `status`, giving its lease up; False if `worker` lost it."""

        def write(_try: int) -> bool:
            now = datetime.now(UTC)
            with write_transaction(self.engine) as conn:
                changed = conn.execute(
                    update(drafts)
                    .where(*self._held(ident, worker))
                    .values(
                        **values,
                        status=status.value,
                        lease_owner=None,
                        lease_expires_at=None,
                        updated_at=now,
                    )
                ).rowcount
            return bool(changed)

        return again_if_cut(write)

    @staticmethod
    def _held(ident: str, worker: str) -> tuple[Any, ...]:
        return (
            drafts.c.id == ident,
            drafts.c.status == JobStatus.RUNNING.value,
            drafts.c.lease_owner == worker,
        )
