"""Action items: the filtered list (overdue ones too), how many are overdue, one item's
follow-up (status, due date, tracker reference) and its history.

An item is named by its stable key (`rca.store.action_rules`), or by its position in the
postmortem's latest revision as older clients do (at most 6 digits; keys have 12 characters).
"""

from __future__ import annotations

from datetime import date as CalendarDate
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from api.auth import require
from api.routes_incidents import services_of
from api.schemas import MAX_PAGE, Page, decode_cursor, encode_cursor
from api.schemas_actions import (
    ActionHistoryPublic,
    ActionItemPublic,
    ActionItemUpdate,
    OverdueCount,
)
from rca.domain import ActionKind, ActionStatus, Priority
from rca.errors import InvalidArgument
from rca.store.action_items import today_utc
from rca.store.action_rules import due_problem
from rca.store.keys import Principal, Role

router = APIRouter(prefix="/v1", tags=["action items"])
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]
Reviewer = Annotated[Principal, Depends(require(Role.REVIEWER))]

PostmortemId = Annotated[str, Path(max_length=128, description="The postmortem's id.")]
Item = Annotated[
    str,
    Path(
        pattern=r"^([0-9]{1,6}|[0-9a-f]{12}(-[1-9][0-9]{0,2})?)$",
        description="The item's key, or its 0-based position in the latest revision.",
    ),
]
Cursor = Annotated[
    str | None,
    Query(max_length=400, description="The `next_cursor` of the previous page."),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]


@router.get("/action-items", response_model=Page[ActionItemPublic])
async def list_action_items(
    request: Request,
    _p: Engineer,
    cursor: Cursor = None,
    limit: Limit = 20,
    status: Annotated[list[ActionStatus] | None, Query(max_length=4)] = None,
    kind: Annotated[list[ActionKind] | None, Query(max_length=4)] = None,
    priority: Annotated[list[Priority] | None, Query(max_length=4)] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    postmortem_id: Annotated[str | None, Query(max_length=128)] = None,
    overdue: Annotated[
        bool | None, Query(description="Only overdue items (true) or only the others (false).")
    ] = None,
    due_before: Annotated[
        CalendarDate | None, Query(description="Only items due before this day.")
    ] = None,
) -> Page[ActionItemPublic]:
    """Action items of every postmortem's latest revision with their current status, due date
    and tracker reference, by postmortem id and position; filtered by status (default: all),
    kind, priority, owner (case-insensitive), postmortem, overdue today (UTC) or not, and a due
    date before a day."""
    after = None
    if cursor is not None:
        ident, item = decode_cursor(cursor, 2)
        if not item.isascii() or not item.isdigit() or len(item) > 9:
            raise InvalidArgument("malformed cursor")
        after = (ident, int(item))
    if due_before is not None and (problem := due_problem(due_before)):
        raise InvalidArgument(problem)
    services = services_of(request)
    rows = await services.quick(
        services.store.action_item_page,
        limit + 1,
        after,
        statuses=status or [],
        kinds=kind or [],
        priorities=priority or [],
        owner=owner,
        postmortem_id=postmortem_id,
        overdue=overdue,
        due_before=due_before,
    )
    following = None
    if len(rows) > limit:
        last = rows[limit - 1]
        following = encode_cursor(last.postmortem_id, last.item)
    items = [ActionItemPublic.of(r) for r in rows[:limit]]
    return Page[ActionItemPublic](items=items, next_cursor=following)


@router.get("/action-items/overdue-count", response_model=OverdueCount)
async def count_overdue(request: Request, _p: Engineer) -> OverdueCount:
    """How many action items are open or in progress and due before today (UTC)."""
    services = services_of(request)
    today = today_utc()
    count = await services.quick(services.store.overdue_count, today)
    return OverdueCount(today=today, overdue=count)


@router.patch("/action-items/{postmortem_id}/{item}", response_model=ActionItemPublic)
def update_action_item(
    postmortem_id: PostmortemId,
    item: Item,
    update: ActionItemUpdate,
    request: Request,
    principal: Reviewer,
) -> ActionItemPublic:
    """Set an action item's status, due date (null: back to the default for its priority)
    and tracker reference (of the postmortem's latest revision); each change is recorded in
    the item's history and the audit trail, the same value again changes nothing. The
    postmortem's text never changes."""
    row = services_of(request).store.change_action_item(
        postmortem_id, item, update.change(), principal.name
    )
    return ActionItemPublic.of(row)


@router.get(
    "/action-items/{postmortem_id}/{item}/history", response_model=Page[ActionHistoryPublic]
)
async def action_item_history(
    postmortem_id: PostmortemId,
    item: Item,
    request: Request,
    _p: Engineer,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ActionHistoryPublic]:
    """Every change of an action item's status, due date and tracker reference, oldest first:
    who and when. A key names an item a later revision dropped as well."""
    after = None
    if cursor is not None:
        (last_id,) = decode_cursor(cursor, 1)
        if not last_id.isascii() or not last_id.isdigit() or len(last_id) > 18:
            raise InvalidArgument("malformed cursor")
        after = int(last_id)
    services = services_of(request)
    entries = await services.quick(
        services.store.action_history, postmortem_id, item, limit + 1, after
    )
    following = encode_cursor(entries[limit - 1].id) if len(entries) > limit else None
    items = [ActionHistoryPublic.of(e) for e in entries[:limit]]
    return Page[ActionHistoryPublic](items=items, next_cursor=following)
