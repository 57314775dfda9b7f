"""The periodic digest's record (`digest_runs`: one row per period whose `digest.ready` event
was queued) and incidents indexed by when they were first recorded.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-13
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rca.store.engine import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest_runs",
        sa.Column("period_end", UTCDateTime, nullable=False),
        sa.Column("period_start", UTCDateTime, nullable=False),
        sa.Column("queued_at", UTCDateTime, nullable=False),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("period_end", name="pk_digest_runs"),
    )
    op.create_index("ix_incidents_created_at", "incidents", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_incidents_created_at", table_name="incidents")
    op.drop_table("digest_runs")
