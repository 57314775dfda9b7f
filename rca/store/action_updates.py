"""Following up action items: setting an item's status, due date and tracker reference, each
change recorded in the item's history and the audit trail in the same transaction (the same
value again changes nothing), and reading that history.

An item is named by its stable key, or by its position in the postmortem's latest revision (as
older clients do). A status change is sent to webhook subscribers (`action_item.updated`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Final, Literal

from sqlalchemy import Connection, Engine, Row, and_, insert, select, update

from rca.config import ActionSettings
from rca.domain import ActionStatus
from rca.errors import InvalidArgument, NotFound
from rca.store import audit, webhook_events
from rca.store.action_items import ActionItemRow, row_of, today_utc
from rca.store.action_rules import (
    CLOSED,
    KEY_PATTERN,
    due_problem,
    tracker_key_problem,
    tracker_url_problem,
)
from rca.store.action_tables import action_item_history, action_items
from rca.store.engine import postmortems, read_transaction
from rca.store.writes import now, writing


class _Keep(Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP
"""A field of an `ActionChange` left as it is."""


@dataclass(frozen=True)
class ActionChange:
    """What to change about one action item; what is left `KEEP` (or a None status) stays."""

    status: ActionStatus | None = None
    """The new follow-up status."""
    due_on: date | Literal[_Keep.KEEP] | None = KEEP
    """The due date (None: back to the default for the priority)."""
    tracker_key: str | Literal[_Keep.KEEP] | None = KEEP
    """The issue's key in a tracker (None: none)."""
    tracker_url: str | Literal[_Keep.KEEP] | None = KEEP
    """The issue's http(s) URL (None: none)."""


@dataclass(frozen=True)
class HistoryEntry:
    """One change of an action item."""

    id: int
    """The entry's id: the history's order."""
    at: datetime
    """When."""
    actor: str
    """Who: a person's name, or the source of the revision that changed an untracked status."""
    field: str
    """`status`, `due_on`, `tracker_key` or `tracker_url`."""
    old: str | None
    """The value before (dates ISO; None: unset)."""
    new: str | None
    """The value after."""


def check_change(change: ActionChange) -> None:
    """InvalidArgument for a due date or tracker reference that cannot be used."""
    problems = [
        due_problem(change.due_on) if isinstance(change.due_on, date) else None,
        tracker_key_problem(change.tracker_key) if isinstance(change.tracker_key, str) else None,
        tracker_url_problem(change.tracker_url) if isinstance(change.tracker_url, str) else None,
    ]
    found = [p for p in problems if p]
    if found:
        raise InvalidArgument("; ".join(found))


def change_action_item(
    engine: Engine,
    ident: str,
    item: int | str,
    change: ActionChange,
    actor: str,
    *,
    actions: ActionSettings,
    today: date | None = None,
) -> ActionItemRow:
    """Apply `change` to one item of the postmortem's latest revision (by key or position), in
    one transaction with a history row per field changed and an audit entry."""
    check_change(change)
    with writing(engine) as conn:
        title = conn.execute(
            select(postmortems.c.title).where(postmortems.c.id == ident)
        ).scalar_one_or_none()
        if title is None:
            raise NotFound("postmortem", ident)
        row = _locate(conn, ident, item, lock=True)
        stamp = now()
        values, changed = _differences(row, change, actor, stamp)
        if not values:
            return row_of(row, title, actions, today or today_utc())
        where = _the(ident, row.item_key)
        conn.execute(update(action_items).where(where).values(updated_at=stamp, **values))
        conn.execute(
            insert(action_item_history),
            [
                {
                    "postmortem_id": ident,
                    "item_key": row.item_key,
                    "at": stamp,
                    "actor": actor[:100],
                    "field": field,
                    "old": old,
                    "new": new,
                }
                for field, old, new in changed
            ],
        )
        after = conn.execute(select(action_items).where(where)).one()
        shown = row_of(after, title, actions, today or today_utc())
        _audit(conn, ident, shown, changed, actor)
        if "status" in values:
            webhook_events.action_item_updated(conn, shown, ActionStatus(row.status), actor)
        return shown


def _differences(
    row: Row[Any], change: ActionChange, actor: str, stamp: datetime
) -> tuple[dict[str, Any], list[tuple[str, str | None, str | None]]]:
    """The column values to write and the (field, old, new) history of the change."""
    values: dict[str, Any] = {}
    changed: list[tuple[str, str | None, str | None]] = []
    if change.status is not None and change.status.value != row.status:
        was_closed = ActionStatus(row.status) in CLOSED
        closed = row.closed_at if was_closed else stamp
        values |= {
            "status": change.status.value,
            "status_by": actor[:100],
            "status_at": stamp,
            "closed_at": closed if change.status in CLOSED else None,
        }
        changed.append(("status", row.status, change.status.value))
    if change.due_on is not KEEP and change.due_on != row.due_on:
        values["due_on"] = change.due_on
        changed.append(("due_on", _iso(row.due_on), _iso(change.due_on)))
    for field in ("tracker_key", "tracker_url"):
        new = getattr(change, field)
        if new is not KEEP and new != getattr(row, field):
            values[field] = new
            changed.append((field, getattr(row, field), new))
    return values, changed


def _audit(
    conn: Connection,
    ident: str,
    row: ActionItemRow,
    changed: list[tuple[str, str | None, str | None]],
    actor: str,
) -> None:
    by_field = {field: (old, new) for field, old, new in changed}
    if "status" in by_field:
        old, new = by_field["status"]
        audit.record(
            conn,
            actor,
            "action_item.status_changed",
            "postmortem",
            ident,
            item=row.item,
            status=new,
            previous=old,
        )
    if "due_on" in by_field:
        old, new = by_field["due_on"]
        audit.record(
            conn,
            actor,
            "action_item.due_changed",
            "postmortem",
            ident,
            key=row.key,
            due_on=new,
            previous=old,
        )
    if "tracker_key" in by_field or "tracker_url" in by_field:
        audit.record(
            conn,
            actor,
            "action_item.tracker_changed",
            "postmortem",
            ident,
            key=row.key,
            tracker_key=row.tracker_key,
            tracker_url=row.tracker_url,
        )


def set_action_status(
    engine: Engine,
    ident: str,
    item: int | str,
    status: ActionStatus,
    actor: str,
    *,
    actions: ActionSettings,
) -> ActionItemRow:
    """Set one item's follow-up status (the same status again changes nothing)."""
    return change_action_item(
        engine, ident, item, ActionChange(status=status), actor, actions=actions
    )


def set_due_date(
    engine: Engine,
    ident: str,
    item: int | str,
    due_on: date | None,
    actor: str,
    *,
    actions: ActionSettings,
) -> ActionItemRow:
    """Set one item's due date (None: back to the default for its priority)."""
    return change_action_item(
        engine, ident, item, ActionChange(due_on=due_on), actor, actions=actions
    )


def set_tracker_ref(
    engine: Engine,
    ident: str,
    item: int | str,
    tracker_key: str | None,
    tracker_url: str | None,
    actor: str,
    *,
    actions: ActionSettings,
) -> ActionItemRow:
    """Record the issue an item became in a tracker (None, None: none)."""
    change = ActionChange(tracker_key=tracker_key, tracker_url=tracker_url)
    return change_action_item(engine, ident, item, change, actor, actions=actions)


def action_history(
    engine: Engine, ident: str, item: int | str, limit: int, after: int | None = None
) -> list[HistoryEntry]:
    """Up to `limit` changes of one item (by key, or position in the latest revision), oldest
    first, after the entry id `after`; NotFound for an unknown postmortem or item. A key names
    an item the latest revision no longer has as well."""
    with read_transaction(engine) as conn:
        known = conn.execute(
            select(postmortems.c.id).where(postmortems.c.id == ident)
        ).scalar_one_or_none()
        if known is None:
            raise NotFound("postmortem", ident)
        key = _locate(conn, ident, item, current=False).item_key
        h = action_item_history.c
        query = select(action_item_history).where(h.postmortem_id == ident, h.item_key == key)
        if after is not None:
            query = query.where(h.id > after)
        rows = conn.execute(query.order_by(h.id).limit(limit)).all()
    return [HistoryEntry(r.id, r.at, r.actor, r.field, r.old, r.new) for r in rows]


def _locate(
    conn: Connection, ident: str, item: int | str, current: bool = True, lock: bool = False
) -> Row[Any]:
    """The item's row: a key, or a position in the latest revision (at most 6 digits; a key
    has 12 characters, so a key of digits only is still a key)."""
    t = action_items.c
    if isinstance(item, int) or (item.isascii() and item.isdigit() and len(item) <= 6):
        position = int(item)
        query = select(action_items).where(t.postmortem_id == ident, t.position == position)
    elif re.fullmatch(KEY_PATTERN, item):
        query = select(action_items).where(t.postmortem_id == ident, t.item_key == item)
        if current:
            query = query.where(t.position.is_not(None))
    else:
        raise NotFound("action item", f"{ident}#{item}")
    found = conn.execute(query.with_for_update() if lock else query).first()
    if found is None:
        raise NotFound("action item", f"{ident}#{item}")
    return found


def _the(postmortem_id: str, key: str) -> Any:
    return and_(action_items.c.postmortem_id == postmortem_id, action_items.c.item_key == key)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
