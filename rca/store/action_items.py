"""Reading action items and their follow-up: the items of every postmortem's latest revision are
rows of `action_items` (kept in step with each save, see `rca.store.action_sync`), so a filtered
page of them, one postmortem's tracked state, and the overdue ones are indexed queries.

Items are known by a stable key (`rca.store.action_rules`) and listed by postmortem id and
position; the position is also accepted where an item is named, for older clients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    Row,
    Select,
    and_,
    bindparam,
    not_,
    or_,
    select,
)

from rca.config import ActionSettings
from rca.domain import ActionItem, ActionKind, ActionStatus, Postmortem, Priority
from rca.store.action_rules import due_before as due_before_clause
from rca.store.action_rules import due_date, is_overdue, item_keys, overdue_now
from rca.store.action_tables import action_items
from rca.store.engine import postmortems, read_transaction
from rca.store.writes import now


@dataclass(frozen=True)
class ActionStatusRecord:
    """The tracked state of one action item of a postmortem's latest revision."""

    status: ActionStatus
    """Its current status."""
    updated_by: str | None
    """Who last set the status in rca (None: nobody; the document's status holds)."""
    updated_at: datetime | None
    """When."""
    key: str = ""
    """Its stable key."""
    due_on: date | None = None
    """Its due date: the one a reviewer set, else the default for its priority."""
    due_set: bool = False
    """Whether a reviewer set the due date."""
    overdue: bool = False
    """Open or in progress and due before today."""
    tracker_key: str | None = None
    """The issue it became in a tracker (`PROJ-123`)."""
    tracker_url: str | None = None
    """That issue's http(s) URL."""


@dataclass(frozen=True)
class ActionItemRow:
    """One action item of a postmortem, with its current status."""

    postmortem_id: str
    postmortem_title: str
    item: int
    """Position in the postmortem's `action_items`, 0-based."""
    action: ActionItem
    """The item, its status the tracked one when there is one."""
    updated_by: str | None = None
    """Who last set the status in rca."""
    updated_at: datetime | None = None
    """When."""
    key: str = ""
    """The item's stable key (see `rca.store.action_rules`)."""
    due_on: date | None = None
    """Its due date (set by a reviewer, else the default for its priority; None: none)."""
    due_set: bool = False
    """Whether a reviewer set the due date."""
    overdue: bool = False
    """Open or in progress and due before today."""
    tracker_key: str | None = None
    """The issue it became in a tracker."""
    tracker_url: str | None = None
    """That issue's URL."""
    created_at: datetime | None = None
    """When the item first appeared."""
    closed_at: datetime | None = None
    """When it became done or won't do."""


def today_utc() -> date:
    """Today, in UTC: the day overdue items are counted on unless one is given."""
    return now().date()


def with_statuses(pm: Postmortem, records: dict[int, ActionStatusRecord]) -> list[ActionItemRow]:
    """The postmortem's action items with the tracked state (by item position) applied; items
    without a record keep the document's status and take their key from their text."""
    keys: list[str] = []

    def key_of(index: int) -> str:  # the keys of the texts, worked out once if any is needed
        if not keys:
            keys.extend(item_keys(a.text for a in pm.action_items))
        return keys[index]

    rows = []
    for index, action in enumerate(pm.action_items):
        record = records.get(index)
        if record is None:
            rows.append(ActionItemRow(pm.id, pm.title, index, action, key=key_of(index)))
            continue
        if record.status is not action.status:
            action = action.model_copy(update={"status": record.status})
        rows.append(
            ActionItemRow(
                pm.id,
                pm.title,
                index,
                action,
                record.updated_by,
                record.updated_at,
                key=record.key or key_of(index),
                due_on=record.due_on,
                due_set=record.due_set,
                overdue=record.overdue,
                tracker_key=record.tracker_key,
                tracker_url=record.tracker_url,
            )
        )
    return rows


_t = action_items.c
_STATUSES = select(
    _t.position,
    _t.item_key,
    _t.priority,
    _t.status,
    _t.status_by,
    _t.status_at,
    _t.due_on,
    _t.created_at,
    _t.tracker_key,
    _t.tracker_url,
).where(_t.postmortem_id == bindparam("ident"), _t.position.is_not(None))
"""The tracked state of one postmortem's current items (built once: a statement built per
call costs more than running it)."""


def action_statuses(
    engine: Engine, ident: str, *, actions: ActionSettings, today: date | None = None
) -> dict[int, ActionStatusRecord]:
    """The tracked state of the action items of a postmortem's latest revision, by position."""
    with read_transaction(engine) as conn:
        return statuses_in(conn, ident, actions=actions, today=today)


def statuses_in(
    conn: Connection, ident: str, *, actions: ActionSettings, today: date | None = None
) -> dict[int, ActionStatusRecord]:
    """`action_statuses`, read in the caller's transaction."""
    day = today or today_utc()
    found = {}
    for (
        position,
        key,
        priority,
        value,
        by,
        at,
        due_on,
        appeared,
        tracker_key,
        tracker_url,
    ) in conn.execute(_STATUSES, {"ident": ident}):
        status = ActionStatus(value)
        due = due_date(due_on, Priority(priority), appeared, actions)
        found[position] = ActionStatusRecord(
            status,
            by,
            at,
            key=key,
            due_on=due,
            due_set=due_on is not None,
            overdue=is_overdue(status, due, day),
            tracker_key=tracker_key,
            tracker_url=tracker_url,
        )
    return found


_READ = (
    "postmortem_id",
    "item_key",
    "position",
    "text",
    "kind",
    "priority",
    "owner",
    "status",
    "status_by",
    "status_at",
    "due_on",
    "tracker_key",
    "tracker_url",
    "created_at",
    "closed_at",
)
_VALUES = itemgetter(*(list(_t.keys()).index(name) for name in _READ))
"""What `row_of` reads of a row, by position (reading a row's values by name costs more)."""


def row_of(r: Row[Any], title: str, actions: ActionSettings, today: date) -> ActionItemRow:
    """An `action_items` row as an item row, its due date and overdue flag worked out. The
    row starts with the table's columns, in order (`select(action_items, ...)`)."""
    (
        postmortem_id,
        key,
        position,
        text,
        kind,
        priority_value,
        owner,
        status_value,
        status_by,
        status_at,
        due_on,
        tracker_key,
        tracker_url,
        created_at,
        closed_at,
    ) = _VALUES(r)
    status = ActionStatus(status_value)
    priority = Priority(priority_value)
    action = ActionItem.model_construct(  # as validated when its revision was saved
        text=text, kind=ActionKind(kind), priority=priority, owner=owner, status=status
    )
    due = due_date(due_on, priority, created_at, actions)
    return ActionItemRow(
        postmortem_id=postmortem_id,
        postmortem_title=title,
        item=position if position is not None else -1,
        action=action,
        updated_by=status_by,
        updated_at=status_at,
        key=key,
        due_on=due,
        due_set=due_on is not None,
        overdue=is_overdue(status, due, today),
        tracker_key=tracker_key,
        tracker_url=tracker_url,
        created_at=created_at,
        closed_at=closed_at,
    )


def current_items() -> Select[Any]:
    """The rows of the items of the latest revisions, each with its postmortem's title."""
    return (
        select(action_items, postmortems.c.title.label("postmortem_title"))
        .join(postmortems, postmortems.c.id == action_items.c.postmortem_id)
        .where(action_items.c.position.is_not(None))
    )


def action_item_page(
    engine: Engine,
    limit: int,
    after: tuple[str, int] | None = None,
    statuses: Sequence[ActionStatus] = (),
    kinds: Sequence[ActionKind] = (),
    priorities: Sequence[Priority] = (),
    owner: str | None = None,
    postmortem_id: str | None = None,
    *,
    actions: ActionSettings,
    overdue: bool | None = None,
    due_before: date | None = None,
    today: date | None = None,
) -> list[ActionItemRow]:
    """Up to `limit` action items of the postmortems' latest revisions, with their current
    status, in (postmortem id, position) order after the pair of the last one seen; filtered
    by status, kind, priority, owner (case-insensitively), postmortem, overdue or not on
    `today` (default: today, UTC), and a due date before `due_before`."""
    day = today or today_utc()
    query = _page_query(
        after is not None,
        bool(statuses),
        bool(kinds),
        bool(priorities),
        owner is not None,
        postmortem_id is not None,
    )
    if overdue is not None:
        late = overdue_now(day, actions)
        query = query.where(late if overdue else not_(late))
    if due_before is not None:
        query = query.where(due_before_clause(due_before, actions))
    values: dict[str, Any] = {
        "page_size": limit,
        "after_postmortem": after[0] if after else None,
        "after_position": after[1] if after else None,
        "statuses": [s.value for s in statuses],
        "kinds": [k.value for k in kinds],
        "priorities": [p.value for p in priorities],
        "owner": owner.strip().casefold() if owner is not None else None,
        "postmortem": postmortem_id,
    }
    with read_transaction(engine) as conn:
        rows = conn.execute(query, values).all()
    return [row_of(r, r.postmortem_title, actions, day) for r in rows]


@cache
def _page_query(
    after: bool, statuses: bool, kinds: bool, priorities: bool, owner: bool, postmortem: bool
) -> Select[Any]:
    """`action_item_page`'s statement for the filters given, their values bound parameters:
    built once for each combination (one built per call costs more than running it)."""
    t = action_items.c
    query = current_items()
    if after:
        last: BindParameter[str] = bindparam("after_postmortem")
        query = query.where(
            or_(
                t.postmortem_id > last,
                and_(t.postmortem_id == last, t.position > bindparam("after_position")),
            )
        )
    if statuses:
        query = query.where(t.status.in_(bindparam("statuses", expanding=True)))
    if kinds:
        query = query.where(t.kind.in_(bindparam("kinds", expanding=True)))
    if priorities:
        query = query.where(t.priority.in_(bindparam("priorities", expanding=True)))
    if owner:
        query = query.where(t.owner_folded == bindparam("owner"))
    if postmortem:
        query = query.where(t.postmortem_id == bindparam("postmortem"))
    return query.order_by(t.postmortem_id, t.position).limit(bindparam("page_size"))
