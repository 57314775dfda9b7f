"""The draft review pages: a draft with its progress, a decision per suggestion (accept, edit,
reject) and finalizing into a postmortem. A stale review answers the draft page again with status
412 and the reviewer's edit kept, so it can be redone.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.web import views
from api.web.pages.base import Csrf, Viewer, check, render, services_of
from rca.domain import ReviewDecision
from rca.errors import PreconditionFailed
from rca.store.keys import Role
from rca.store.sessions import Session

router = APIRouter(prefix="/ui", include_in_schema=False)


def _draft_page(
    request: Request, session: Session, draft_id: str, status: int = 200, **extra: Any
) -> HTMLResponse:
    services = services_of(request)
    job = services.jobs.get(draft_id)
    incident = views.for_display(services, services.store.get_incident(job.incident_id))
    context: dict[str, Any] = {
        "job": job,
        "incident": incident,
        "evidence": views.evidence_rows(incident),
        "conflict": None,
        "partial": False,
    }
    if job.draft is not None:
        context.update(views.draft_context(job.draft, incident))
    elif job.partial is not None:  # read-only while the job runs
        context.update(views.draft_context(job.partial, incident), partial=True)
    context.update(extra)
    return render(request, "draft.html", session, status, **context)


@router.get("/drafts/{draft_id}", response_class=HTMLResponse)
def draft_page(draft_id: str, request: Request, session: Viewer) -> HTMLResponse:
    return _draft_page(request, session, draft_id)


@router.get("/drafts/{draft_id}/progress")
async def draft_progress(draft_id: str, request: Request, _session: Viewer) -> dict[str, Any]:
    services = services_of(request)
    job = await services.quick(services.jobs.get, draft_id)
    parts = len(job.partial.suggestions) if job.partial else 0
    return {
        "status": job.status.value,
        "progress": job.progress,
        "message": job.message,
        "parts": parts,
    }


@router.post("/drafts/{draft_id}/suggestions/{suggestion_id}", response_class=HTMLResponse)
async def review(draft_id: str, suggestion_id: str, request: Request, session: Viewer) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    check(session, fields.get("csrf", ""), Role.REVIEWER)
    try:
        decision = ReviewDecision(fields.get("decision", ""))
        version = int(fields.get("version", ""))
    except ValueError:
        raise HTTPException(400, "the form lacks a decision or the draft version") from None
    services = services_of(request)
    job = services.jobs.get(draft_id)
    edited = None
    if decision is ReviewDecision.EDIT:
        if job.draft is None:
            raise HTTPException(409, "the draft is not ready")
        edited = views.edited_content(job.draft, suggestion_id, fields)
    incident = services.store.get_incident(job.incident_id)
    try:
        services.reviews.decide(
            draft_id,
            suggestion_id,
            decision,
            session.principal.name,
            version,
            edited=edited,
            incident=incident,
        )
    except PreconditionFailed as err:
        conflict = {
            "suggestion_id": suggestion_id,
            "decision": decision.value,
            "edited": edited,
            "your_version": version,
            "current_version": err.current_version,
        }
        return _draft_page(request, session, draft_id, 412, conflict=conflict)
    return RedirectResponse(f"/ui/drafts/{draft_id}#{suggestion_id}", status_code=303)


@router.post("/drafts/{draft_id}/finalize")
def finalize(
    draft_id: str,
    request: Request,
    session: Viewer,
    csrf: Csrf,
    version: Annotated[int, Form(ge=1)],
) -> Response:
    check(session, csrf, Role.REVIEWER)
    services = services_of(request)
    job = services.jobs.get(draft_id)
    incident = services.store.get_incident(job.incident_id)
    try:
        _, saved = services.reviews.finalize(draft_id, session.principal.name, version, incident)
    except PreconditionFailed as err:
        conflict = {
            "finalize": True,
            "your_version": version,
            "current_version": err.current_version,
        }
        return _draft_page(request, session, draft_id, 412, conflict=conflict)
    services.propose_recurrences_quietly(saved.id)
    return RedirectResponse(f"/ui/postmortems/{saved.id}", status_code=303)
