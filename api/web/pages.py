"""The UI's pages: sign-in, incidents, draft review, postmortems, action items, eval reports.

Each page reads through the same services as the JSON API. Forms post back here (303 to the
page after success, so a reload never repeats an action); a stale review answers the draft
page again with status 412 and the reviewer's edit kept, so it can be redone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.services import Services
from api.web import views
from rca.errors import PreconditionFailed, RcaError
from rca.keys import Role
from rca.markdown import to_markdown
from rca.models import (
    ActionKind,
    ActionStatus,
    FactorCategory,
    Priority,
    ReviewDecision,
    Severity,
)
from rca.sessions import Session

router = APIRouter(prefix="/ui", include_in_schema=False)
COOKIE = "rca_session"
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"], default=True),
    undefined=StrictUndefined,
    finalize=views.shown,
)
TEMPLATES.filters["when"] = views.when
TEMPLATES.filters["pct"] = views.pct
TEMPLATES.globals.update(
    CATEGORIES=[c.value for c in FactorCategory],
    ACTION_KINDS=[k.value for k in ActionKind],
    PRIORITIES=[p.value for p in Priority],
)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def render(
    request: Request, name: str, session: Session | None, status: int = 200, **context: Any
) -> HTMLResponse:
    """A page from its template; the session gives the nav, role and CSRF token."""
    html = TEMPLATES.get_template(name).render(
        session=session,
        can_review=session is not None and session.principal.role.allows(Role.REVIEWER),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    """The HTML form of every error under /ui/ (installed as the app's `html_errors`)."""
    if status == 401:
        target = quote(request.url.path, safe="/")
        return RedirectResponse(f"/ui/sign-in?next={target}", status_code=303)
    session = getattr(request.state, "web_session", None)
    return render(request, "error.html", session, status, title=title, detail=detail)


async def signed_in(request: Request) -> Session:
    """The browser's session, or a redirect to sign in."""
    services = services_of(request)
    session = await services.quick(services.sessions.resolve, request.cookies.get(COOKIE))
    if session is None:
        raise HTTPException(401, "sign in first")
    request.state.web_session = session
    return session


Viewer = Annotated[Session, Depends(signed_in)]
Csrf = Annotated[str, Form(max_length=100)]


def _check(session: Session, csrf: str, role: Role = Role.ENGINEER) -> None:
    if not session.csrf_ok(csrf):
        raise HTTPException(403, "the form is stale or not from this site; reload the page")
    if not session.principal.role.allows(role):
        raise HTTPException(403, f"this needs the {role.value} role")


def _same_origin(request: Request) -> None:
    """Sign-in has no session yet to carry a CSRF token: refuse posts from other sites."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        raise HTTPException(403, "sign-in must come from this site")


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return "/ui/incidents"


# --- sign-in --------------------------------------------------------------------------------


@router.get("", response_class=RedirectResponse)
@router.get("/", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/ui/incidents", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "sign_in.html", None, next=_safe_next(next), error=None)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    api_key: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "/ui/incidents",
) -> Response:
    _same_origin(request)
    services = services_of(request)
    principal = services.keys.authenticate(api_key.strip())
    if principal is None:
        return render(
            request,
            "sign_in.html",
            None,
            401,
            next=_safe_next(next),
            error="That key is unknown, revoked or expired.",
        )
    token, _ = services.sessions.start(principal)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(services.sessions.lifetime.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/ui",
    )
    return response


@router.post("/sign-out")
def sign_out(request: Request, session: Viewer, csrf: Csrf) -> RedirectResponse:
    _check(session, csrf)
    services_of(request).sessions.end(request.cookies.get(COOKIE))
    response = RedirectResponse("/ui/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


# --- incidents ------------------------------------------------------------------------------


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
        rows=rows[:50],
        severities=list(Severity),
        chosen=set(severity or []),
        next_cursor=following,
    )


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(incident_id: str, request: Request, session: Viewer) -> HTMLResponse:
    services = services_of(request)
    stored = services.store.get_incident(incident_id)
    similar, similar_note = views.similar_for(services, stored)
    incident = views.for_display(services, stored)
    return render(
        request,
        "incident.html",
        session,
        incident=incident,
        evidence=views.evidence_rows(incident),
        moments=views.moments(incident),
        durations=views.durations(incident),
        timeline_svg=views.incident_timeline_svg(incident),
        drafts=services.jobs.for_incident(incident_id),
        similar=similar,
        similar_note=similar_note,
        open_actions=views.open_actions_of(services, [h.postmortem_id for h in similar]),
    )


@router.post("/incidents/{incident_id}/drafts")
def request_draft(
    incident_id: str, request: Request, session: Viewer, csrf: Csrf
) -> RedirectResponse:
    _check(session, csrf)
    services = services_of(request)
    job = services.submit_draft(incident_id, services.settings.llm.model, session.principal.name)
    return RedirectResponse(f"/ui/drafts/{job.id}", status_code=303)


# --- drafts ---------------------------------------------------------------------------------


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
    }
    if job.draft is not None:
        context.update(views.draft_context(job.draft, incident))
    context.update(extra)
    return render(request, "draft.html", session, status, **context)


@router.get("/drafts/{draft_id}", response_class=HTMLResponse)
def draft_page(draft_id: str, request: Request, session: Viewer) -> HTMLResponse:
    return _draft_page(request, session, draft_id)


@router.get("/drafts/{draft_id}/progress")
async def draft_progress(draft_id: str, request: Request, _session: Viewer) -> dict[str, Any]:
    services = services_of(request)
    job = await services.quick(services.jobs.get, draft_id)
    return {"status": job.status.value, "progress": job.progress, "message": job.message}


@router.post("/drafts/{draft_id}/suggestions/{suggestion_id}", response_class=HTMLResponse)
async def review(draft_id: str, suggestion_id: str, request: Request, session: Viewer) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    _check(session, fields.get("csrf", ""), Role.REVIEWER)
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
    _check(session, csrf, Role.REVIEWER)
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
    return RedirectResponse(f"/ui/postmortems/{saved.id}", status_code=303)


# --- postmortems and action items ------------------------------------------------------------


@router.get("/postmortems", response_class=HTMLResponse)
def postmortems_page(
    request: Request,
    session: Viewer,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    services = services_of(request)
    rows = services.store.postmortem_page(101, None, title=q.strip() if q and q.strip() else None)
    hits = None
    if q and q.strip():
        try:
            hits = services.retrieval.search.search(q.strip(), k=10).hits
        except RcaError:
            hits = []
    return render(request, "postmortems.html", session, rows=rows[:100], q=q or "", hits=hits)


@router.get("/postmortems/{postmortem_id}", response_class=HTMLResponse)
def postmortem_page(postmortem_id: str, request: Request, session: Viewer) -> HTMLResponse:
    services = services_of(request)
    stored = services.store.get_postmortem(postmortem_id)
    items = services.store.action_item_page(200, postmortem_id=postmortem_id)
    return render(
        request,
        "postmortem.html",
        session,
        stored=stored,
        pm=stored.postmortem,
        items=items,
        chain_svg=views.chain_svg(stored.postmortem.causal_chain),
        fishbone_svg=views.fishbone(stored.postmortem),
    )


@router.get("/postmortems/{postmortem_id}/export.md", response_class=PlainTextResponse)
def postmortem_markdown(postmortem_id: str, request: Request, _session: Viewer) -> Response:
    stored = services_of(request).store.get_postmortem(postmortem_id)
    return PlainTextResponse(
        to_markdown(stored.postmortem),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{stored.postmortem.id}.md"'},
    )


@router.get("/action-items", response_class=HTMLResponse)
def action_items_page(
    request: Request,
    session: Viewer,
    owner: Annotated[str | None, Query(max_length=100)] = None,
    priority: Annotated[list[Priority] | None, Query(max_length=4)] = None,
) -> HTMLResponse:
    """The board: a column per status, must-haves first, filtered by owner and priority."""
    items = services_of(request).store.action_item_page(
        1000, owner=owner or None, priorities=priority or []
    )
    rank = {p: n for n, p in enumerate(Priority)}
    items.sort(key=lambda i: (rank[i.action.priority], i.postmortem_id, i.item))
    columns = {status: [i for i in items if i.action.status is status] for status in ActionStatus}
    return render(
        request,
        "actions.html",
        session,
        columns=columns,
        owner=owner or "",
        statuses=ActionStatus,
        priorities=list(Priority),
        chosen=set(priority or []),
    )


@router.post("/action-items/{postmortem_id}/{item}")
def set_action_status(
    postmortem_id: str,
    item: int,
    request: Request,
    session: Viewer,
    csrf: Csrf,
    status: Annotated[ActionStatus, Form()],
) -> RedirectResponse:
    _check(session, csrf, Role.REVIEWER)
    services_of(request).store.set_action_status(
        postmortem_id, item, status, session.principal.name
    )
    return RedirectResponse("/ui/action-items", status_code=303)


# --- eval reports ---------------------------------------------------------------------------


@router.get("/evals", response_class=HTMLResponse)
def evals_page(request: Request, session: Viewer) -> HTMLResponse:
    report = views.latest_report(services_of(request).settings)
    return render(
        request,
        "evals.html",
        session,
        report=report,
        reports_dir=str(views.reports_dir(services_of(request).settings)),
    )


@router.get("/evals/report.html", response_class=HTMLResponse)
def eval_report(request: Request, _session: Viewer) -> Response:
    report = views.latest_report(services_of(request).settings)
    if report is None:
        raise HTTPException(404, "no eval report yet")
    # Our own generated file, shown in a sandboxed frame: no script runs in it either way.
    return HTMLResponse(
        report.read_text(encoding="utf-8"),
        headers={
            "Content-Security-Policy": (
                "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
            )
        },
    )
