"""A counter of postmortem revisions, kept in the transaction that stores each one: the store's
fingerprint (read by every similar search) becomes one row instead of a sum over every
postmortem. Seeded with that sum, so the fingerprint's value does not change.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO store_counters (name, value) SELECT 'postmortem_revisions',"
        " COALESCE(SUM(latest_revision), 0) FROM postmortems"
    )


def downgrade() -> None:
    op.drop_table("store_counters")
