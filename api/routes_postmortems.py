"""Postmortems: import, get, list, export; free-text similar search (action items: see
`api.routes_action_items`)."""

from __future__ import annotations

from datetime import date as CalendarDate
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from api.auth import require
from api.routes_incidents import IdempotencyKey, idempotent, services_of
from api.schemas import MAX_PAGE, Page, decode_cursor, encode_cursor
from api.schemas_postmortems import (
    PostmortemImported,
    PostmortemListItem,
    PostmortemPublic,
)
from rca.domain import Postmortem, Severity
from rca.domain.similar import SearchFilters, SearchMode, SearchResult
from rca.errors import InvalidArgument
from rca.formats.markdown import to_markdown
from rca.store import Outcome
from rca.store.keys import Principal, Role

router = APIRouter(prefix="/v1")
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]
Reviewer = Annotated[Principal, Depends(require(Role.REVIEWER))]

PostmortemId = Annotated[str, Path(max_length=128, description="The postmortem's id.")]
Cursor = Annotated[
    str | None,
    Query(max_length=400, description="The `next_cursor` of the previous page."),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]
Revision = Annotated[int | None, Query(ge=1, description="A revision (default: the latest).")]
Names = Annotated[list[str] | None, Query(max_length=20)]
"""A repeatable parameter of short names (service, tag): at most 20 of them."""


def _check_names(names: list[str] | None, what: str) -> list[str]:
    found = [name.strip() for name in names or []]
    if any(not name or len(name) > 100 for name in found):
        raise InvalidArgument(f"each {what} must be 1 to 100 characters")
    return found


def _check_range(since: CalendarDate | None, until: CalendarDate | None) -> None:
    if since is not None and until is not None and since > until:
        raise InvalidArgument("since is after until")


# --- postmortems ---------------------------------------------------------------------------


@router.post(
    "/postmortems",
    status_code=201,
    response_model=PostmortemImported,
    responses={200: {"description": "The same content was already the latest revision"}},
    tags=["postmortems"],
)
def import_postmortem(
    postmortem: Postmortem,
    request: Request,
    principal: Reviewer,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Import one postmortem in the interchange format: a new id is `created`, changed content
    under a known id becomes a new revision (`revised`), the same content is `unchanged`."""
    services = services_of(request)

    def run() -> tuple[int, Any, dict[str, str]]:
        saved = services.store.import_postmortem(
            postmortem, source=f"api:{principal.key_id}", actor=principal.name
        )
        status = 200 if saved.outcome is Outcome.UNCHANGED else 201
        body = PostmortemImported.of(saved).model_dump(mode="json")
        return status, body, {"Location": f"/v1/postmortems/{saved.id}"}

    payload = postmortem.model_dump_json()
    return idempotent(services, principal, idempotency_key, request, payload, run)


@router.get("/postmortems/{postmortem_id}", response_model=PostmortemPublic, tags=["postmortems"])
async def get_postmortem(
    postmortem_id: PostmortemId, request: Request, _p: Engineer, revision: Revision = None
) -> PostmortemPublic:
    """One revision of a postmortem (the latest by default) with its action items' status."""
    services = services_of(request)
    stored, rows = await services.quick(
        services.store.postmortem_with_items, postmortem_id, revision
    )
    return PostmortemPublic.of(stored, rows)


@router.get("/postmortems", response_model=Page[PostmortemListItem], tags=["postmortems"])
async def list_postmortems(
    request: Request,
    _p: Engineer,
    cursor: Cursor = None,
    limit: Limit = 20,
    severity: Annotated[list[Severity] | None, Query(max_length=5)] = None,
    service: Names = None,
    since: CalendarDate | None = None,
    until: CalendarDate | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200, description="In the title.")] = (
        None
    ),
) -> Page[PostmortemListItem]:
    """Postmortems, newest incident date first (undated last), a page at a time; filtered by
    severity, service (any of those given), incident date and a title substring."""
    after = None
    if cursor is not None:
        day, ident = decode_cursor(cursor, 2)
        try:
            after = (CalendarDate.fromisoformat(day) if day else None, ident)
        except ValueError:
            raise InvalidArgument("malformed cursor") from None
    _check_range(since, until)
    services = services_of(request)
    rows = await services.quick(
        services.store.postmortem_page,
        limit + 1,
        after,
        severities=severity or [],
        services=_check_names(service, "service"),
        since=since,
        until=until,
        title=q.strip() if q else None,
    )
    following = None
    if len(rows) > limit:
        last = rows[limit - 1]
        following = encode_cursor(last.date or "", last.id)
    items = [PostmortemListItem.of(r) for r in rows[:limit]]
    return Page[PostmortemListItem](items=items, next_cursor=following)


@router.get(
    "/postmortems/{postmortem_id}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The postmortem as Markdown or in the JSON interchange format",
            "content": {"text/markdown": {}, "application/json": {}},
        }
    },
    tags=["postmortems"],
)
def export_postmortem(
    postmortem_id: PostmortemId,
    request: Request,
    _p: Engineer,
    export_format: Annotated[Literal["md", "json"], Query(alias="format")] = "md",
    revision: Revision = None,
) -> Response:
    """Download a postmortem revision as Markdown or JSON (the formats `rca import` reads); on
    the latest revision, action items carry their current status."""
    services = services_of(request)
    stored, rows = services.store.postmortem_with_items(postmortem_id, revision)
    pm = stored.postmortem.model_copy(update={"action_items": [r.action for r in rows]})
    filename = pm.id.replace(":", "_")
    if export_format == "json":
        return JSONResponse(
            pm.model_dump(mode="json", exclude_none=True),
            headers={"Content-Disposition": f'attachment; filename="{filename}.json"'},
        )
    return Response(
        to_markdown(pm),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.md"'},
    )


# --- search --------------------------------------------------------------------------------


@router.get("/search/similar", response_model=SearchResult, tags=["search"])
async def search_similar(
    request: Request,
    _p: Engineer,
    q: Annotated[str, Query(min_length=1, max_length=4000, description="What happened.")],
    k: Annotated[int, Query(ge=1, le=50)] = 5,
    service: Names = None,
    severity: Annotated[list[Severity] | None, Query(max_length=5)] = None,
    tag: Names = None,
    since: CalendarDate | None = None,
    until: CalendarDate | None = None,
    mode: SearchMode = "hybrid",
) -> SearchResult:
    """Past postmortems most similar to a free-text description, with why each matched."""
    _check_range(since, until)
    filters = SearchFilters(
        services=_check_names(service, "service"),
        severities=severity or [],
        tags=_check_names(tag, "tag"),
        date_from=since,
        date_to=until,
    )
    return await services_of(request).search_similar(q, k, filters, mode)
