"""Request and response bodies of the HTTP API (domain types stay in `rca.domain`)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from rca.domain import Draft, LanguageFlag, ReviewDecision, Severity, Suggestion
from rca.domain.values import as_utc
from rca.errors import InvalidArgument
from rca.store.jobs import DraftJob, JobStatus

T = TypeVar("T")
MAX_PAGE = 100


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` as `cursor` for the next one (null: the end)."""

    items: list[T]
    next_cursor: str | None = None


class IncidentListItem(BaseModel):
    """An incident in a list."""

    id: str
    title: str
    severity: Severity
    started_at: datetime


class DraftRequest(BaseModel):
    """Ask for a draft; the model defaults to the configured one."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, max_length=200)
    """A configured model (`GET /v1/models` lists them) or `baseline`."""


class DraftJobPublic(BaseModel):
    """A draft job: status, progress and, once done, the draft."""

    id: str
    incident_id: str
    status: JobStatus
    progress: float
    message: str
    model: str
    attempts: int
    error: str | None
    retryable: bool
    version: int
    """The draft's version, also its ETag: send it as `If-Match` with review decisions."""
    finalized_postmortem_id: str | None
    incident_revision: int | None
    """The incident revision the draft was written from (`GET /v1/incidents/{id}/revisions`);
    null until a worker has read the incident."""
    created_at: datetime
    updated_at: datetime
    draft: Draft | None
    partial: Draft | None
    """Until the job succeeds: the draft so far, read-only (the sections done; a note names
    those still being drafted). Reviews wait for `draft`."""

    @classmethod
    def of(cls, job: DraftJob) -> DraftJobPublic:
        """The public view of a job."""
        return cls(
            id=job.id,
            incident_id=job.incident_id,
            status=job.status,
            progress=round(job.progress, 3),
            message=job.message,
            model=job.model,
            attempts=job.attempts,
            error=job.error,
            retryable=job.retryable,
            version=job.version,
            finalized_postmortem_id=job.finalized_postmortem_id,
            incident_revision=job.incident_revision,
            created_at=job.created_at,
            updated_at=job.updated_at,
            draft=job.draft,
            partial=job.partial,
        )


class ReviewRequest(BaseModel):
    """A decision on one suggestion; `content` only with `edit` (a string for text sections,
    an object of the section's shape otherwise)."""

    model_config = ConfigDict(extra="forbid")

    decision: ReviewDecision
    content: JsonValue = None


class ReviewResult(BaseModel):
    """The suggestion after the decision, the draft's new version, and the blameless-language
    flags of an edit (empty: nothing found)."""

    draft_id: str
    version: int
    suggestion: Suggestion
    flags: list[LanguageFlag]


class FinalizeResult(BaseModel):
    """The postmortem revision a finalized draft became."""

    draft_id: str
    version: int
    postmortem_id: str
    revision: int | None


def encode_cursor(*parts: Any) -> str:
    """An opaque cursor from the sort key of the last item."""
    raw = "\x1f".join(str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, count: int) -> list[str]:
    """The sort key a cursor holds (InvalidArgument if it is not one of ours)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("malformed cursor") from None
    parts = raw.split("\x1f")
    if len(parts) != count:
        raise InvalidArgument("malformed cursor")
    return parts


def decode_time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (time, id) a cursor of a newest-first list holds, None for no cursor
    (InvalidArgument if it is not one of ours)."""
    if cursor is None:
        return None
    at, ident = decode_cursor(cursor, 2)
    try:
        return as_utc(datetime.fromisoformat(at)), ident
    except ValueError:
        raise InvalidArgument("malformed cursor") from None
