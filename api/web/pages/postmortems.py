"""The postmortem pages: the list with title and semantic search, one postmortem with its
pictures and action items, its Markdown export, and the action-item board with status changes.

The list, the search (its hits and the query it repeats) and the board show redacted text; one
postmortem's page and export show it as stored (finalized ones were redacted when finalized).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.schemas_actions import ActionItemUpdate
from api.web import views
from api.web.pages.base import Csrf, Viewer, check, error_page, render, services_of
from api.web.pages.recurrences import recurrence_rows
from rca.domain import ActionStatus, Priority
from rca.errors import RcaError
from rca.formats.markdown import to_markdown
from rca.store.action_items import today_utc
from rca.store.action_rules import MAX_TRACKER_KEY, MAX_TRACKER_URL
from rca.store.keys import Role

router = APIRouter(prefix="/ui", include_in_schema=False)


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
    return render(
        request,
        "postmortems.html",
        session,
        rows=views.titled(services, rows[:100]),
        q=views.redactor_of(services).redact(q) if q else "",
        hits=hits,
    )


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
        recurrences=recurrence_rows(services, postmortem_id),
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
    overdue: bool = False,
) -> HTMLResponse:
    """The board: a column per status, must-haves first, filtered by owner, priority and
    overdue; how many items are overdue in all at the top."""
    services = services_of(request)
    today = today_utc()
    items = views.shown_actions(
        services,
        services.store.action_item_page(
            1000,
            owner=owner or None,
            priorities=priority or [],
            overdue=True if overdue else None,
            today=today,
        ),
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
        overdue=overdue,
        overdue_count=services.store.overdue_count(today),
        today=today,
    )


@router.post("/action-items/{postmortem_id}/{item}")
def set_action_status(
    postmortem_id: str,
    item: Annotated[str, Path(max_length=24)],
    request: Request,
    session: Viewer,
    csrf: Csrf,
    status: Annotated[ActionStatus, Form()],
) -> RedirectResponse:
    """Move an item (named by its key, or its position as older pages did)."""
    check(session, csrf, Role.REVIEWER)
    services_of(request).store.set_action_status(
        postmortem_id, item, status, session.principal.name
    )
    return RedirectResponse("/ui/action-items", status_code=303)


@router.post("/action-items/{postmortem_id}/{item}/follow-up")
def set_follow_up(
    postmortem_id: str,
    item: Annotated[str, Path(max_length=24)],
    request: Request,
    session: Viewer,
    csrf: Csrf,
    due_on: Annotated[str, Form(max_length=10)] = "",
    tracker_key: Annotated[str, Form(max_length=MAX_TRACKER_KEY)] = "",
    tracker_url: Annotated[str, Form(max_length=MAX_TRACKER_URL)] = "",
) -> Response:
    """Set an item's due date (empty: the default for its priority) and tracker issue (empty:
    none), as the form shows them; checked as the API checks them."""
    check(session, csrf, Role.REVIEWER)
    fields = {"due_on": due_on, "tracker_key": tracker_key, "tracker_url": tracker_url}
    try:
        update = ActionItemUpdate(**{k: v.strip() or None for k, v in fields.items()})
    except ValidationError as err:
        problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in err.errors())
        return error_page(request, 400, "That follow-up was not saved", problems)
    services_of(request).store.change_action_item(
        postmortem_id, item, update.change(), session.principal.name
    )
    return RedirectResponse("/ui/action-items", status_code=303)
