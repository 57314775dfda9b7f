"""Durable draft jobs: queued, claimed by a worker under a lease, finished or failed.

A worker claims the oldest queued job and holds a lease it renews with every progress report.
A worker that dies stops renewing: once the lease has expired the job goes back to the queue
(or, after `max_attempts`, fails as retryable), so no job stays "running" forever. A job past
its deadline fails. Only the lease holder may report progress or finish a job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, select, update

from rca.domain import Draft, new_id
from rca.errors import NotFound
from rca.store import audit
from rca.store.engine import drafts, incidents, read_transaction, write_transaction


class JobStatus(StrEnum):
    """Where a draft job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class DraftJob:
    """A draft job and, once it succeeded, its draft (with the review state)."""

    id: str
    incident_id: str
    status: JobStatus
    progress: float
    message: str
    model: str
    requested_by: str
    attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    deadline_at: datetime
    error: str | None
    retryable: bool
    draft: Draft | None
    version: int
    finalized_postmortem_id: str | None
    created_at: datetime
    updated_at: datetime


def _job(row: Any) -> DraftJob:
    return DraftJob(
        id=row.id,
        incident_id=row.incident_id,
        status=JobStatus(row.status),
        progress=row.progress,
        message=row.message,
        model=row.model,
        requested_by=row.requested_by,
        attempts=row.attempts,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        deadline_at=row.deadline_at,
        error=row.error,
        retryable=row.retryable,
        draft=Draft.model_validate_json(row.document) if row.document else None,
        version=row.version,
        finalized_postmortem_id=row.finalized_postmortem_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class DraftJobs:
    """The job table."""

    def __init__(
        self,
        engine: Engine,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 2,
    ) -> None:
        self.engine = engine
        self.lease = lease
        self.max_attempts = max_attempts

    def submit(
        self, incident_id: str, model: str, requested_by: str, deadline: timedelta
    ) -> DraftJob:
        """Queue a draft of a stored incident."""
        now = datetime.now(UTC)
        ident = new_id("draft")
        with write_transaction(self.engine) as conn:
            known = conn.execute(
                select(incidents.c.id).where(incidents.c.id == incident_id)
            ).scalar_one_or_none()
            if known is None:
                raise NotFound("incident", incident_id)
            conn.execute(
                insert(drafts).values(
                    id=ident,
                    incident_id=incident_id,
                    status=JobStatus.QUEUED.value,
                    progress=0.0,
                    message="queued",
                    model=model,
                    requested_by=requested_by,
                    attempts=0,
                    deadline_at=now + deadline,
                    retryable=False,
                    version=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            audit.record(conn, requested_by, "draft.requested", "draft", ident, model=model)
            return _job(conn.execute(select(drafts).where(drafts.c.id == ident)).one())

    def get(self, ident: str) -> DraftJob:
        """One job (NotFound if unknown)."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(drafts).where(drafts.c.id == ident)).one_or_none()
        if row is None:
            raise NotFound("draft", ident)
        return _job(row)

    def for_incident(self, incident_id: str) -> list[DraftJob]:
        """The incident's drafts, newest first."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(drafts)
                .where(drafts.c.incident_id == incident_id)
                .order_by(drafts.c.created_at.desc(), drafts.c.id.desc())
            ).all()
        return [_job(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Jobs per status."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(drafts.c.status, func.count()).group_by(drafts.c.status)
            ).all()
        found = {status.value: 0 for status in JobStatus}
        found.update({str(status): int(count) for status, count in rows})
        return found

    def queued(self) -> int:
        """Jobs waiting for a worker (an index count: submissions ask it every time)."""
        with read_transaction(self.engine) as conn:
            count = conn.execute(
                select(func.count())
                .select_from(drafts)
                .where(drafts.c.status == JobStatus.QUEUED.value)
            ).scalar_one()
        return int(count)

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
            return _job(conn.execute(select(drafts).where(drafts.c.id == row.id)).one())

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
        now = datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(drafts)
                .where(*self._held(ident, worker))
                .values(
                    progress=max(0.0, min(1.0, progress)),
                    message=message[:500],
                    lease_expires_at=now + self.lease,
                    updated_at=now,
                )
            ).rowcount
        return bool(changed)

    def succeed(self, ident: str, worker: str, draft: Draft) -> bool:
        """Store the finished draft (version 1); False if the lease was lost meanwhile."""
        now = datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(drafts)
                .where(*self._held(ident, worker))
                .values(
                    status=JobStatus.SUCCEEDED.value,
                    progress=1.0,
                    message="done",
                    document=draft.model_dump_json(),
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
        return bool(changed)

    def fail(self, ident: str, worker: str, error: str, retryable: bool) -> bool:
        """Mark the job failed; False if the lease was lost meanwhile."""
        now = datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(drafts)
                .where(*self._held(ident, worker))
                .values(
                    status=JobStatus.FAILED.value,
                    error=error[:2_000],
                    retryable=retryable,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            ).rowcount
        return bool(changed)

    @staticmethod
    def _held(ident: str, worker: str) -> tuple[Any, ...]:
        return (
            drafts.c.id == ident,
            drafts.c.status == JobStatus.RUNNING.value,
            drafts.c.lease_owner == worker,
        )
