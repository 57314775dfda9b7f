"""The incident pages: the list (filtered by severity, paged by cursor), one incident with its
evidence, timeline, drafts and similar past postmortems, and the request for a new draft.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.web import views
from api.web.pages.base import Csrf, Viewer, check, render, services_of
from rca.domain import Severity
from rca.store.integrations import links_of

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(
    request: Request,
    session: Viewer,
    severity: Annotated[list[Severity] | None, Query(max_length=5)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    store = services_of(request).store
    after = views.incident_cursor(cursor)
    rows = store.incident_page(51, after, severity or [], None, None)
    following = views.cursor_after(rows[49]) if len(rows) > 50 else None
    return render(
        request,
        "incidents.html",
        session,
        rows=views.titled(services_of(request), rows[:50]),
        severities=list(Severity),
        chosen=set(severity or []),
        next_cursor=following,
    )


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(incident_id: str, request: Request, session: Viewer) -> HTMLResponse:
    services = services_of(request)
    read = services.store.read_incident(incident_id)
    stored = read.incident
    similar, similar_note = views.similar_for(services, stored)
    incident = views.for_display(services, stored)
    return render(
        request,
        "incident.html",
        session,
        incident=incident,
        set_aside=read.set_aside,
        evidence=views.evidence_rows(incident),
        moments=views.moments(incident),
        durations=views.durations(incident),
        timeline_svg=views.incident_timeline_svg(incident),
        drafts=services.jobs.for_incident(incident_id),
        similar=similar,
        similar_note=similar_note,
        open_actions=views.open_actions_of(services, [h.postmortem_id for h in similar]),
        revisions=[(r, _what(r.change)) for r in services.store.incident_revisions(incident_id)],
        sources=links_of(services.store.engine, incident_id),
    )


def _what(change: dict[str, Any]) -> str:
    """One revision's change in words."""
    if change.get("created"):
        return "created"
    if change.get("replaced"):
        return "replaced by an import"
    parts = []
    if added := change.get("added"):
        parts.append(f"{len(added)} evidence item{'s' if len(added) != 1 else ''} added")
    if fields := change.get("fields"):
        parts.append("set " + ", ".join(str(f).replace("_", " ") for f in fields))
    return "; ".join(parts) or "changed"


@router.post("/incidents/{incident_id}/drafts")
def request_draft(
    incident_id: str, request: Request, session: Viewer, csrf: Csrf
) -> RedirectResponse:
    check(session, csrf)
    services = services_of(request)
    job = services.submit_draft(incident_id, services.settings.llm.model, session.principal)
    return RedirectResponse(f"/ui/drafts/{job.id}", status_code=303)
