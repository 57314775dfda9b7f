"""Recurrence links between postmortems (proposed at finalization, decided by a reviewer).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rca.store.engine import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(128)


def upgrade() -> None:
    op.create_table(
        "recurrence_links",
        sa.Column("postmortem_id", ID, nullable=False),
        sa.Column("past_postmortem_id", ID, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("open_actions", sa.Text, nullable=False),
        sa.Column("proposed_at", UTCDateTime, nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["postmortem_id"],
            ["postmortems.id"],
            name="fk_recurrence_links_postmortem_id_postmortems",
        ),
        sa.ForeignKeyConstraint(
            ["past_postmortem_id"],
            ["postmortems.id"],
            name="fk_recurrence_links_past_postmortem_id_postmortems",
        ),
        sa.PrimaryKeyConstraint("postmortem_id", "past_postmortem_id", name="pk_recurrence_links"),
    )
    op.create_index("ix_recurrence_links_past", "recurrence_links", ["past_postmortem_id"])


def downgrade() -> None:
    op.drop_table("recurrence_links")
