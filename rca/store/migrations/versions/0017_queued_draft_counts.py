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

_COUNTS = "('queued_drafts', 1), ('queued_drafts:' || coalesce({row}.requested_key, ''), 1)"
_NAMES = "('queued_drafts', 'queued_drafts:' || coalesce({row}.requested_key, ''))"
TRIGGERS = {
    "drafts_queue_added": f"""
        CREATE TRIGGER drafts_queue_added AFTER INSERT ON drafts WHEN NEW.status = 'queued'
        BEGIN
            INSERT INTO store_counters (name, value) VALUES {_COUNTS.format(row="NEW")}
            ON CONFLICT (name) DO UPDATE SET value = value + 1;
        END""",
    "drafts_queue_entered": f"""
        CREATE TRIGGER drafts_queue_entered AFTER UPDATE OF status, requested_key ON drafts
        WHEN NEW.status = 'queued'
        BEGIN
            INSERT INTO store_counters (name, value) VALUES {_COUNTS.format(row="NEW")}
            ON CONFLICT (name) DO UPDATE SET value = value + 1;
        END""",
    "drafts_queue_left": f"""
        CREATE TRIGGER drafts_queue_left AFTER UPDATE OF status, requested_key ON drafts
        WHEN OLD.status = 'queued'
        BEGIN
            UPDATE store_counters SET value = value - 1 WHERE name IN {_NAMES.format(row="OLD")};
        END""",
    "drafts_queue_removed": f"""
        CREATE TRIGGER drafts_queue_removed AFTER DELETE ON drafts WHEN OLD.status = 'queued'
        BEGIN
            UPDATE store_counters SET value = value - 1 WHERE name IN {_NAMES.format(row="OLD")};
        END""",
}
"""An update that keeps a draft queued runs both update triggers: one less, one more."""


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
    for trigger in TRIGGERS.values():
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DELETE FROM store_counters WHERE name LIKE 'queued_drafts%'")
