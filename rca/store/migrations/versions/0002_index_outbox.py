"""Outbox of revisions to index, and the state of derived indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rca.store.engine import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "index_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("postmortem_id", sa.String(128), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_index_outbox"),
    )
    op.create_table(
        "index_state",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_index_state"),
    )
    # Postmortems stored before the outbox existed still need indexing.
    op.execute(
        "INSERT INTO index_outbox (postmortem_id, revision, created_at) "
        "SELECT id, latest_revision, updated_at FROM postmortems"
    )


def downgrade() -> None:
    op.drop_table("index_state")
    op.drop_table("index_outbox")
