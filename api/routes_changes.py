"""The change feed: `POST /v1/changes` records a deploy, config change or flag flip;
`GET /v1/changes` lists them, newest first. Drafting attaches those on an incident's services
shortly before it started as candidate triggers (`Services.attach_changes`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auth import require
from api.routes_incidents import IdempotencyKey, idempotent, services_of
from api.schemas import MAX_PAGE, Page, decode_time_cursor, encode_cursor
from rca.domain.change import ChangeEvent, ChangeKind, StoredChange
from rca.domain.values import Timestamp
from rca.store.keys import Principal, Role

router = APIRouter(prefix="/v1", tags=["changes"])
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]


@router.post(
    "/changes",
    status_code=201,
    response_model=StoredChange,
    responses={200: {"description": "A change with this external_id was already stored"}},
)
def record_change(
    change: ChangeEvent,
    request: Request,
    principal: Engineer,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record a change; one on a service no incident or postmortem names is stored and
    flagged (`known_service: false`)."""
    services = services_of(request)

    def run() -> tuple[int, Any, dict[str, str]]:
        stored, new = services.changes.record(change, f"api:{principal.key_id}")
        return 201 if new else 200, stored.model_dump(mode="json"), {}

    return idempotent(services, principal, idempotency_key, request, change.model_dump_json(), run)


@router.get("/changes", response_model=Page[StoredChange])
async def list_changes(
    request: Request,
    _principal: Engineer,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    service: Annotated[list[str] | None, Query(max_length=20)] = None,
    kind: Annotated[list[ChangeKind] | None, Query()] = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
) -> Page[StoredChange]:
    """Changes, newest first, a page at a time; filtered by service, kind and time."""
    after = decode_time_cursor(cursor)
    services = services_of(request)
    rows = await services.quick(
        services.changes.page, limit + 1, after, service or [], kind or [], since, until
    )
    following = None
    if len(rows) > limit:
        last = rows[limit - 1]
        following = encode_cursor(last.at.isoformat(), last.id)
    return Page[StoredChange](items=rows[:limit], next_cursor=following)
