"""Action items that can be overdue: every postmortem's action items as rows by a stable key
(`action_items`), with a due date and a tracker reference, and the history of their changes
(`action_item_history`), filled from what is stored.

Each item of a latest revision becomes a row; it first appeared with the earliest revision
holding its key (that day counts for its default due date). A status tracked in
`action_status` (by position in the latest revision) becomes the row's status, and the audit
trail's status changes of that position its history (one history row from `action_status`
when the trail has none). `action_status` is left as it was, no longer written: the record of
what was tracked by position, statuses of positions no revision has any more included; a
downgrade writes back the statuses set since.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from rca.errors import InvalidInput
from rca.store.action_rules import item_keys
from rca.store.engine import UTCDateTime
from rca.store.readback import postmortem_from_stored

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(128)
BATCH = 200
CLOSED = ("done", "wont_do")

_revisions = sa.table(
    "postmortem_revisions",
    sa.column("postmortem_id"),
    sa.column("revision"),
    sa.column("document"),
    sa.column("created_at", UTCDateTime),
)
_status = sa.table(
    "action_status",
    sa.column("postmortem_id"),
    sa.column("item"),
    sa.column("status"),
    sa.column("updated_by"),
    sa.column("updated_at", UTCDateTime),
)
_audit = sa.table(
    "audit_log",
    sa.column("id"),
    sa.column("at", UTCDateTime),
    sa.column("actor"),
    sa.column("action"),
    sa.column("target_type"),
    sa.column("target_id"),
    sa.column("detail"),
)
_items = sa.table(
    "action_items",
    *(
        sa.column(name)
        for name in (
            "postmortem_id",
            "item_key",
            "position",
            "text",
            "kind",
            "priority",
            "owner",
            "owner_folded",
            "status",
            "status_by",
        )
    ),
    sa.column("status_at", UTCDateTime),
    sa.column("created_at", UTCDateTime),
    sa.column("updated_at", UTCDateTime),
    sa.column("closed_at", UTCDateTime),
)
_history = sa.table(
    "action_item_history",
    sa.column("postmortem_id"),
    sa.column("item_key"),
    sa.column("at", UTCDateTime),
    sa.column("actor"),
    sa.column("field"),
    sa.column("old"),
    sa.column("new"),
)


def upgrade() -> None:
    op.create_table(
        "action_items",
        sa.Column("postmortem_id", ID, nullable=False),
        sa.Column("item_key", sa.String(24), nullable=False),
        sa.Column("position", sa.Integer, nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(100), nullable=True),
        sa.Column("owner_folded", sa.String(400), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_by", sa.String(100), nullable=True),
        sa.Column("status_at", UTCDateTime, nullable=True),
        sa.Column("due_on", sa.Date, nullable=True),
        sa.Column("tracker_key", sa.String(200), nullable=True),
        sa.Column("tracker_url", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["postmortem_id"],
            ["postmortems.id"],
            name="fk_action_items_postmortem_id_postmortems",
        ),
        sa.PrimaryKeyConstraint("postmortem_id", "item_key", name="pk_action_items"),
    )
    op.create_index("ix_action_items_position", "action_items", ["postmortem_id", "position"])
    op.create_index("ix_action_items_status", "action_items", ["status", "priority"])
    op.create_table(
        "action_item_history",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("postmortem_id", ID, nullable=False),
        sa.Column("item_key", sa.String(24), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("old", sa.Text, nullable=True),
        sa.Column("new", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(
            ["postmortem_id"],
            ["postmortems.id"],
            name="fk_action_item_history_postmortem_id_postmortems",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_action_item_history"),
    )
    op.create_index(
        "ix_action_item_history_item",
        "action_item_history",
        ["postmortem_id", "item_key", "id"],
    )
    _fill()


def _fill() -> None:
    """A row per item of every latest revision, with its tracked status and its history."""
    conn = op.get_bind()
    tracked = {(r.postmortem_id, r.item): r for r in conn.execute(sa.select(_status)).all()}
    trail: dict[tuple[str, int], list[Any]] = {}
    changes = (
        sa.select(_audit)
        .where(
            _audit.c.action == "action_item.status_changed",
            _audit.c.target_type == "postmortem",
        )
        .order_by(_audit.c.id)
    )
    for entry in conn.execute(changes).all():
        detail = json.loads(entry.detail)
        if isinstance(detail.get("item"), int):
            trail.setdefault((entry.target_id, detail["item"]), []).append((entry, detail))
    ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM postmortems ORDER BY id")).all()]
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        rows = conn.execute(
            sa.select(_revisions)
            .where(_revisions.c.postmortem_id.in_(chunk))
            .order_by(_revisions.c.postmortem_id, _revisions.c.revision)
        ).all()
        by_pm: dict[str, list[Any]] = {}
        for row in rows:
            by_pm.setdefault(row.postmortem_id, []).append(row)
        items: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        for ident, revisions in by_pm.items():
            found, events = _rows_of(ident, revisions, tracked, trail)
            items += found
            history += events
        if items:
            op.bulk_insert(_items, items)
        if history:
            op.bulk_insert(_history, history)


def _first_seen(revisions: list[Any]) -> dict[str, datetime]:
    """When each item key first appeared, over every revision (oldest first)."""
    seen: dict[str, datetime] = {}
    for row in revisions:
        try:
            listed = json.loads(row.document).get("action_items") or []
        except (ValueError, AttributeError):
            continue
        texts = [str(i.get("text", "")) for i in listed if isinstance(i, dict)]
        for key in item_keys(texts):
            seen.setdefault(key, row.created_at)
    return seen


def _rows_of(
    ident: str,
    revisions: list[Any],
    tracked: dict[tuple[str, int], Any],
    trail: dict[tuple[str, int], list[Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    latest = revisions[-1]
    try:
        pm = postmortem_from_stored(ident, latest.document)[0]
    except InvalidInput:  # unreadable today: its next revision makes its rows
        return [], []
    seen = _first_seen(revisions)
    items: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    keys = item_keys(a.text for a in pm.action_items)
    for position, (key, action) in enumerate(zip(keys, pm.action_items, strict=True)):
        created = seen.get(key, latest.created_at)
        status, by, at = action.status.value, None, None
        if (state := tracked.get((ident, position))) is not None:
            status, by, at = state.status, state.updated_by, state.updated_at
        items.append(
            {
                "postmortem_id": ident,
                "item_key": key,
                "position": position,
                "text": action.text,
                "kind": action.kind.value,
                "priority": action.priority.value,
                "owner": action.owner,
                "owner_folded": action.owner.strip().casefold() if action.owner else None,
                "status": status,
                "status_by": by,
                "status_at": at,
                "created_at": created,
                "updated_at": max(created, at) if at else created,
                "closed_at": (at or created) if status in CLOSED else None,
            }
        )
        entries = trail.get((ident, position), [])
        for entry, detail in entries:
            history.append(
                {
                    "postmortem_id": ident,
                    "item_key": key,
                    "at": entry.at,
                    "actor": entry.actor,
                    "field": "status",
                    "old": detail.get("previous"),
                    "new": detail.get("status"),
                }
            )
        if state is not None and not entries:
            history.append(
                {
                    "postmortem_id": ident,
                    "item_key": key,
                    "at": state.updated_at,
                    "actor": state.updated_by,
                    "field": "status",
                    "old": action.status.value,
                    "new": state.status,
                }
            )
    return items, history


def downgrade() -> None:
    """Write the statuses set in rca back to `action_status` by position, then drop."""
    conn = op.get_bind()
    items = sa.table(
        "action_items",
        sa.column("postmortem_id"),
        sa.column("position"),
        sa.column("status"),
        sa.column("status_by"),
        sa.column("status_at", UTCDateTime),
    )
    set_in_rca = conn.execute(
        sa.select(items).where(items.c.position.is_not(None), items.c.status_by.is_not(None))
    ).all()
    for row in set_in_rca:
        conn.execute(
            sa.delete(_status).where(
                _status.c.postmortem_id == row.postmortem_id, _status.c.item == row.position
            )
        )
    if set_in_rca:
        op.bulk_insert(
            _status,
            [
                {
                    "postmortem_id": r.postmortem_id,
                    "item": r.position,
                    "status": r.status,
                    "updated_by": r.status_by,
                    "updated_at": r.status_at,
                }
                for r in set_in_rca
            ],
        )
    op.drop_table("action_item_history")
    op.drop_table("action_items")
