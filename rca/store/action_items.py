"""Action items and their follow-up status: the items live in the postmortems' revisions (which
never change), so the tracked status of each is kept beside them; reading the statuses, a
filtered page of items, and setting one item's status (audited)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, and_, insert, select, update

from rca.domain import ActionItem, ActionKind, ActionStatus, Postmortem, Priority
from rca.errors import NotFound
from rca.store import audit, webhook_events
from rca.store.engine import action_status, postmortem_revisions, postmortems, read_transaction
from rca.store.postmortem_records import LATEST
from rca.store.readback import postmortem_from_stored
from rca.store.writes import now, writing


@dataclass(frozen=True)
class ActionStatusRecord:
    """The tracked follow-up status of one action item (revisions never change, so the status
    is kept beside them)."""

    status: ActionStatus
    updated_by: str
    updated_at: datetime


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
    updated_at: datetime | None = None


def with_statuses(pm: Postmortem, records: dict[int, ActionStatusRecord]) -> list[ActionItemRow]:
    """The postmortem's action items with the tracked statuses (by item index) applied."""
    rows = []
    for index, action in enumerate(pm.action_items):
        record = records.get(index)
        if record is None:
            rows.append(ActionItemRow(pm.id, pm.title, index, action))
            continue
        if record.status is not action.status:
            action = action.model_copy(update={"status": record.status})
        rows.append(
            ActionItemRow(pm.id, pm.title, index, action, record.updated_by, record.updated_at)
        )
    return rows


def action_statuses(engine: Engine, ident: str) -> dict[int, ActionStatusRecord]:
    """The tracked follow-up status of a postmortem's action items, by item index."""
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(action_status).where(action_status.c.postmortem_id == ident)
        ).all()
    return {r.item: _status_record(r) for r in rows}


def action_item_page(
    engine: Engine,
    limit: int,
    after: tuple[str, int] | None = None,
    statuses: Sequence[ActionStatus] = (),
    kinds: Sequence[ActionKind] = (),
    priorities: Sequence[Priority] = (),
    owner: str | None = None,
    postmortem_id: str | None = None,
    batch: int | None = None,
) -> list[ActionItemRow]:
    """Up to `limit` action items of the postmortems' latest revisions, with their current
    status, in (postmortem id, item index) order after the pair of the last one seen.

    Items live in the documents, so postmortems are read a batch at a time and their items
    filtered here (status by the current one, owner case-insensitively) until the page is
    full. The first batch is about what an unfiltered page needs (a postmortem has a few
    items; parsing documents is the cost), later batches double, up to 200.
    """
    batch = batch or limit // 3 + 1
    bound, inclusive = (after[0], True) if after is not None else (None, False)
    found: list[ActionItemRow] = []
    while len(found) < limit:
        query = select(postmortems.c.id, postmortems.c.title, postmortem_revisions.c.document).join(
            postmortem_revisions, LATEST
        )
        if postmortem_id is not None:
            query = query.where(postmortems.c.id == postmortem_id)
        if bound is not None:
            query = query.where(
                postmortems.c.id >= bound if inclusive else postmortems.c.id > bound
            )
        with read_transaction(engine) as conn:
            rows = conn.execute(query.order_by(postmortems.c.id).limit(batch)).all()
            tracked = conn.execute(
                select(action_status).where(action_status.c.postmortem_id.in_([r.id for r in rows]))
            ).all()
        records: dict[str, dict[int, ActionStatusRecord]] = defaultdict(dict)
        for r in tracked:
            records[r.postmortem_id][r.item] = _status_record(r)
        for row in rows:
            pm = postmortem_from_stored(row.id, row.document)[0]
            for item in with_statuses(pm, records[row.id]):
                if after is not None and (row.id, item.item) <= after:
                    continue
                if _matches(item.action, statuses, kinds, priorities, owner):
                    found.append(item)
                    if len(found) == limit:
                        return found
        if len(rows) < batch:
            break
        bound, inclusive = rows[-1].id, False
        batch = min(batch * 2, 200)
    return found


def set_action_status(
    engine: Engine, ident: str, item: int, status: ActionStatus, actor: str
) -> ActionItemRow:
    """Set the follow-up status of item `item` (0-based) of the postmortem's latest
    revision and record it in the audit trail, in one transaction; the same status again
    changes nothing."""
    with writing(engine) as conn:
        row = conn.execute(
            select(postmortems.c.id, postmortem_revisions.c.document)
            .join(postmortem_revisions, LATEST)
            .where(postmortems.c.id == ident)
        ).one_or_none()
        if row is None:
            raise NotFound("postmortem", ident)
        pm = postmortem_from_stored(ident, row.document)[0]
        if not 0 <= item < len(pm.action_items):
            raise NotFound("action item", f"{ident}#{item}")
        key = and_(action_status.c.postmortem_id == ident, action_status.c.item == item)
        stored = conn.execute(select(action_status).where(key)).one_or_none()
        record = _status_record(stored) if stored is not None else None
        previous = record.status if record is not None else pm.action_items[item].status
        if previous is not status:
            record = ActionStatusRecord(status, actor, now())
            values = {
                "status": status.value,
                "updated_by": actor,
                "updated_at": record.updated_at,
            }
            if stored is None:
                conn.execute(insert(action_status).values(postmortem_id=ident, item=item, **values))
            else:
                conn.execute(update(action_status).where(key).values(**values))
            audit.record(
                conn,
                actor,
                "action_item.status_changed",
                "postmortem",
                ident,
                item=item,
                status=status.value,
                previous=previous.value,
            )
            moved = with_statuses(pm, {item: record})[item]
            webhook_events.action_item_updated(
                conn, ident, pm.title, item, moved.action, previous, actor
            )
        return with_statuses(pm, {item: record} if record is not None else {})[item]


def _matches(
    action: ActionItem,
    statuses: Sequence[ActionStatus],
    kinds: Sequence[ActionKind],
    priorities: Sequence[Priority],
    owner: str | None,
) -> bool:
    if statuses and action.status not in statuses:
        return False
    if kinds and action.kind not in kinds:
        return False
    if priorities and action.priority not in priorities:
        return False
    return owner is None or (action.owner or "").casefold() == owner.strip().casefold()


def _status_record(row: Row[Any]) -> ActionStatusRecord:
    return ActionStatusRecord(ActionStatus(row.status), row.updated_by, row.updated_at)
