"""Browser sessions of the reviewer web UI; an index that serves the incident list's order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rca.store.engine import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"]),
    )
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    # The list's order (newest first, then id) straight from an index: with only started_at
    # indexed, incidents sharing a start time were sorted in a temporary tree on every page.
    op.create_index("ix_incidents_started_desc_id", "incidents", [sa.text("started_at DESC"), "id"])


def downgrade() -> None:
    op.drop_index("ix_incidents_started_desc_id", "incidents")
    op.drop_index("ix_web_sessions_expires_at", "web_sessions")
    op.drop_table("web_sessions")
