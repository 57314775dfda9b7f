"""Keeping `action_items` in step with a postmortem's latest revision, inside the transaction that
saves the revision.

Each item of the new revision is matched to a stored row by its key (`rca.store.action_rules`):
a known item takes its new position, text, kind, priority and owner and keeps its status (unless
nobody set one in rca: then a changed status in the document is followed, and recorded in the
history as the revision's source), due date and tracker reference; a new item starts with the
document's status, and first appeared when `first_appeared` says. Rows of items the revision no
longer has lose their position and stay.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from rca.domain import ActionItem, ActionStatus, Postmortem
from rca.store.action_rules import CLOSED, FINALIZED_PREFIX, item_keys
from rca.store.action_tables import action_item_history, action_items


def folded(owner: str | None) -> str | None:
    """The owner as the owner filter compares it."""
    return owner.strip().casefold() if owner else None


def _described(action: ActionItem) -> dict[str, Any]:
    return {
        "text": action.text,
        "kind": action.kind.value,
        "priority": action.priority.value,
        "owner": action.owner,
        "owner_folded": folded(action.owner),
    }


def closed_at(status: ActionStatus, stamp: datetime) -> datetime | None:
    """When an item in `status` was closed, if it changed to it at `stamp`."""
    return stamp if status in CLOSED else None


def first_appeared(pm: Postmortem, stamp: datetime, source: str) -> datetime:
    """When an item first seen in a revision saved at `stamp` from `source` first appeared: at
    `stamp` for a reviewed draft's revision; for any other (an import, the API) on the
    postmortem's date (midnight UTC) when it has one earlier than `stamp`, else at `stamp`
    (so imported history does not look new)."""
    if source.startswith(FINALIZED_PREFIX) or pm.date is None:
        return stamp
    return min(datetime.combine(pm.date, time(), UTC), stamp)


def sync_action_items(conn: Connection, pm: Postmortem, stamp: datetime, source: str) -> None:
    """Make the postmortem's `action_items` rows say what its new latest revision says."""
    stored = {
        row.item_key: row
        for row in conn.execute(
            select(action_items).where(action_items.c.postmortem_id == pm.id)
        ).all()
    }
    keys = item_keys(a.text for a in pm.action_items)
    appeared = first_appeared(pm, stamp, source)
    for position, (key, action) in enumerate(zip(keys, pm.action_items, strict=True)):
        row = stored.pop(key, None)
        values = {"position": position, **_described(action)}
        if row is None:
            conn.execute(
                insert(action_items).values(
                    postmortem_id=pm.id,
                    item_key=key,
                    status=action.status.value,
                    created_at=appeared,
                    updated_at=stamp,
                    closed_at=closed_at(action.status, appeared),
                    **values,
                )
            )
            continue
        if row.status_by is None and row.status != action.status.value:
            values |= {"status": action.status.value, "closed_at": closed_at(action.status, stamp)}
            conn.execute(
                insert(action_item_history).values(
                    postmortem_id=pm.id,
                    item_key=key,
                    at=stamp,
                    actor=source[:100],
                    field="status",
                    old=row.status,
                    new=action.status.value,
                )
            )
        if any(getattr(row, name) != value for name, value in values.items()):
            conn.execute(
                update(action_items).where(_the(pm.id, key)).values(updated_at=stamp, **values)
            )
    for key, row in stored.items():
        if row.position is not None:
            conn.execute(
                update(action_items).where(_the(pm.id, key)).values(position=None, updated_at=stamp)
            )


def _the(postmortem_id: str, key: str) -> Any:
    return and_(action_items.c.postmortem_id == postmortem_id, action_items.c.item_key == key)
