"""On SQLite, the drafts waiting in the queue are counted by triggers into `store_counters`
(`queued_drafts`, and `queued_drafts:<key>` per API key asking, `queued_drafts:` for none), so
a submission checks the queue's room by reading two rows instead of counting every waiting
draft while it holds the one write lock (1.5 ms with 3,000 waiting, 4 ms with 8,000, and every
other write of every process waited for it). Triggers see every change of a draft's status,
whoever makes it. Seeded with the drafts waiting now.

PostgreSQL keeps counting under its advisory lock (migration 0015): a counter row there would
be locked by each submission from its insert to its commit, and every submission of one key
would wait for the one before it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ADD = (
    "INSERT INTO store_counters (name, value) VALUES ('queued_drafts', 1),"
    " ('queued_drafts:' || coalesce(NEW.requested_key, ''), 1)"
    " ON CONFLICT (name) DO UPDATE SET value = value + 1"
)
_SUBTRACT = (
    "UPDATE store_counters SET value = value - 1"
    " WHERE name IN ('queued_drafts', 'queued_drafts:' || coalesce(OLD.requested_key, ''))"
)
_CHANGED = "UPDATE OF status, requested_key"
TRIGGERS = {
    "drafts_queue_added": ("INSERT", "NEW.status = 'queued'", _ADD),
    "drafts_queue_entered": (_CHANGED, "NEW.status = 'queued'", _ADD),
    "drafts_queue_left": (_CHANGED, "OLD.status = 'queued'", _SUBTRACT),
    "drafts_queue_removed": ("DELETE", "OLD.status = 'queued'", _SUBTRACT),
}
"""Each trigger on drafts: after what, when, and what it does to the counts. An update that
keeps a draft queued runs both update triggers: one less, one more."""


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "INSERT INTO store_counters (name, value) SELECT 'queued_drafts', COUNT(*) FROM drafts"
        " WHERE status = 'queued'"
    )
    op.execute(
        "INSERT INTO store_counters (name, value) SELECT 'queued_drafts:' ||"
        " coalesce(requested_key, ''), COUNT(*) FROM drafts WHERE status = 'queued'"
        " GROUP BY coalesce(requested_key, '')"
    )
    for name, (event, when, action) in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} AFTER {event} ON drafts WHEN {when} BEGIN {action}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DELETE FROM store_counters WHERE name LIKE 'queued_drafts%'")
