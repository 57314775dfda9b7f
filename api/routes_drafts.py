"""Drafts: status and the draft, a progress event stream, review decisions, finalize, audit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.routes_incidents import services_of
from api.schemas import DraftJobPublic, FinalizeResult, ReviewRequest, ReviewResult
from rca.errors import InvalidArgument, PreconditionRequired
from rca.store import audit
from rca.store.jobs import JobStatus
from rca.store.keys import Principal, Role

router = APIRouter(prefix="/v1", tags=["drafts"])
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]
Reviewer = Annotated[Principal, Depends(require(Role.REVIEWER))]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=40,
        description="The draft version (its ETag) the change is made on; required.",
    ),
]
_TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED)


def _etag(version: int) -> str:
    return f'"{version}"'


def _version(if_match: str | None) -> int:
    if if_match is None:
        raise PreconditionRequired("send If-Match with the draft's ETag (its version)")
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 9:
        raise InvalidArgument('If-Match must be the draft\'s ETag, e.g. "3"')
    return int(value)


@router.get("/drafts/{draft_id}", response_model=DraftJobPublic)
async def get_draft(
    draft_id: str, request: Request, response: Response, _p: Engineer
) -> DraftJobPublic:
    """A draft job's status and progress, and the draft once it is done."""
    services = services_of(request)
    job = await services.quick(services.jobs.get, draft_id)
    response.headers["ETag"] = _etag(job.version)
    return DraftJobPublic.of(job)


@router.get("/incidents/{incident_id}/drafts", response_model=list[DraftJobPublic])
async def incident_drafts(incident_id: str, request: Request, _p: Engineer) -> list[DraftJobPublic]:
    """An incident's drafts, newest first."""
    services = services_of(request)
    await services.quick(services.store.get_incident, incident_id)
    jobs = await services.quick(services.jobs.for_incident, incident_id)
    return [DraftJobPublic.of(job) for job in jobs]


@router.get(
    "/drafts/{draft_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def draft_events(
    draft_id: str,
    request: Request,
    _p: Engineer,
    interval: Annotated[float, Query(ge=0.1, le=10.0)] = 0.5,
) -> StreamingResponse:
    """Server-sent events: `progress` while the job runs, then one `done` or `failed`."""
    jobs = services_of(request).jobs
    await run_in_threadpool(jobs.get, draft_id)  # 404 before the stream starts

    async def events() -> AsyncIterator[str]:
        last: tuple[Any, ...] | None = None
        while True:
            job = await run_in_threadpool(jobs.get, draft_id)
            state = (job.status, round(job.progress, 3), job.message)
            if state != last:
                last = state
                data: dict[str, Any] = {
                    "status": job.status.value,
                    "progress": round(job.progress, 3),
                    "message": job.message,
                }
                if job.status in _TERMINAL:
                    name = "done" if job.status is JobStatus.SUCCEEDED else "failed"
                    data["error"] = job.error
                    yield f"event: {name}\ndata: {json.dumps(data)}\n\n"
                    return
                yield f"event: progress\ndata: {json.dumps(data)}\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(interval)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


@router.post("/drafts/{draft_id}/suggestions/{suggestion_id}/review", response_model=ReviewResult)
def review_suggestion(
    draft_id: str,
    suggestion_id: str,
    decision: ReviewRequest,
    request: Request,
    principal: Reviewer,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Accept, edit or reject one suggestion, on the draft version named by `If-Match`."""
    services = services_of(request)
    version = _version(if_match)
    job = services.jobs.get(draft_id)
    incident = services.store.get_incident(job.incident_id)
    decided = services.reviews.decide(
        draft_id,
        suggestion_id,
        decision.decision,
        principal.name,
        version,
        edited=decision.content,
        incident=incident,
    )
    result = ReviewResult(
        draft_id=draft_id,
        version=decided.draft.version,
        suggestion=decided.suggestion,
        flags=decided.flags,
    )
    return JSONResponse(
        result.model_dump(mode="json"), headers={"ETag": _etag(decided.draft.version)}
    )


@router.post("/drafts/{draft_id}/finalize", status_code=201, response_model=FinalizeResult)
def finalize_draft(
    draft_id: str, request: Request, principal: Reviewer, if_match: IfMatch = None
) -> JSONResponse:
    """Turn the accepted and edited suggestions into a postmortem revision (then indexed)."""
    services = services_of(request)
    version = _version(if_match)
    job = services.jobs.get(draft_id)
    incident = services.store.get_incident(job.incident_id)
    draft, saved = services.reviews.finalize(draft_id, principal.name, version, incident)
    services.propose_recurrences_quietly(saved.id)
    result = FinalizeResult(
        draft_id=draft_id,
        version=draft.version,
        postmortem_id=saved.id,
        revision=saved.revision,
    )
    return JSONResponse(
        result.model_dump(mode="json"),
        status_code=201,
        headers={"ETag": _etag(draft.version), "Location": f"/v1/postmortems/{saved.id}"},
    )


@router.get("/drafts/{draft_id}/audit")
def draft_audit(draft_id: str, request: Request, _p: Reviewer) -> list[dict[str, Any]]:
    """Who requested, drafted, reviewed and finalized this draft, and when."""
    services = services_of(request)
    services.jobs.get(draft_id)
    return [
        {
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "detail": e.detail,
        }
        for e in audit.entries(services.store.engine, "draft", draft_id)
    ]
