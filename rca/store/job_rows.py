"""A draft job as the job table holds it (`rca.store.jobs` keeps the table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from rca.domain import Draft
from rca.domain.values import AS_STORED


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
    partial: Draft | None
    """While the job has not succeeded: the draft so far (the sections done), if any."""
    version: int
    finalized_postmortem_id: str | None
    created_at: datetime
    updated_at: datetime
    incident_revision: int | None = None
    """The incident revision the draft was written from (None until a worker read it)."""


def job_of(row: Any) -> DraftJob:
    """The job a row of the job table holds."""
    # The document is the finished draft once the job succeeded, the draft so far before.
    stored = Draft.model_validate_json(row.document, context=AS_STORED) if row.document else None
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
        draft=stored if row.status == JobStatus.SUCCEEDED.value else None,
        partial=stored if row.status != JobStatus.SUCCEEDED.value else None,
        version=row.version,
        finalized_postmortem_id=row.finalized_postmortem_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        incident_revision=row.incident_revision,
    )
