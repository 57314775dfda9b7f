"""The action items of every postmortem's latest revision, kept as rows beside the revisions (so
pages, overdue lists and measures are indexed queries, not documents parsed), and the history
of what people and revisions changed about each item.

Declared on the same `metadata` as `rca.store.engine`'s tables (migration 0009 creates them and
fills them from what was stored). `rca.store.action_sync` keeps `action_items` in step with each
postmortem's latest revision, in the transaction that saves the revision.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, String, Table, Text

from rca.store.engine import ID, UTCDateTime, metadata

KEY_LENGTH = 24
"""Room for an item key: 12 hex digits, and `-n` for a repeated text."""

action_items = Table(
    "action_items",
    metadata,
    Column("postmortem_id", ID, ForeignKey("postmortems.id"), primary_key=True),
    Column("item_key", String(KEY_LENGTH), primary_key=True),
    Column("position", Integer, nullable=True),
    Column("text", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("priority", String(8), nullable=False),
    Column("owner", String(100), nullable=True),
    Column("owner_folded", String(400), nullable=True),
    Column("status", String(16), nullable=False),
    Column("status_by", String(100), nullable=True),
    Column("status_at", UTCDateTime, nullable=True),
    Column("due_on", Date, nullable=True),
    Column("tracker_key", String(200), nullable=True),
    Column("tracker_url", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
)
"""One row per action item a postmortem has had, by its stable key (`rca.store.action_rules`).

- `position`: 0-based place in the latest revision; null once a later revision dropped the
  item (the row is kept: if the text comes back, so do its status, due date and tracker ref);
- `text` .. `owner`: as the latest revision holding the item says; `owner_folded` is the owner
  case-folded, for the owner filter;
- `status`: the current one; `status_by`/`status_at`: who set it in rca and when (null: never,
  so the document's status is followed);
- `due_on`: the due date a reviewer set (null: the default for the priority, counted from the
  day the item first appeared, `created_at`);
- `tracker_key`/`tracker_url`: the issue it became in a team's tracker;
- `created_at`: when the item first appeared, not when the row was written: the save of a
  finalized draft's revision, but for an imported one (files or the API) the postmortem's date
  (midnight UTC) when that is earlier (`rca.store.action_sync.first_appeared`);
- `updated_at`: the row's last change; `closed_at`: when it became done or won't do (for an
  item that was already closed when it first appeared, `created_at`).
"""
Index("ix_action_items_position", action_items.c.postmortem_id, action_items.c.position)
Index("ix_action_items_status", action_items.c.status, action_items.c.priority)

action_item_history = Table(
    "action_item_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("postmortem_id", ID, ForeignKey("postmortems.id"), nullable=False),
    Column("item_key", String(KEY_LENGTH), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("field", String(16), nullable=False),
    Column("old", Text, nullable=True),
    Column("new", Text, nullable=True),
)
"""Every change of an item's `status`, `due_on`, `tracker_key` or `tracker_url`: who (a
person, or the source of the revision that changed an untracked status) and when; `old` and
`new` as text (dates ISO), null for unset."""
Index(
    "ix_action_item_history_item",
    action_item_history.c.postmortem_id,
    action_item_history.c.item_key,
    action_item_history.c.id,
)
