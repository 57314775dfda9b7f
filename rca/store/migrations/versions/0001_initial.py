"""Initial schema: incidents, postmortems and their immutable revisions.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rca.store.engine import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_IMMUTABLE = """
CREATE TRIGGER postmortem_revisions_no_{op} BEFORE {OP} ON postmortem_revisions
BEGIN SELECT RAISE(ABORT, 'postmortem revisions are immutable'); END
"""

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION rca_refuse_revision_change() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'postmortem revisions are immutable'; END
$$ LANGUAGE plpgsql
"""

_PG_TRIGGER = """
CREATE TRIGGER postmortem_revisions_immutable BEFORE UPDATE OR DELETE ON postmortem_revisions
FOR EACH ROW EXECUTE FUNCTION rca_refuse_revision_change()
"""


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_started_at", "incidents", ["started_at"])
    op.create_table(
        "postmortems",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("latest_revision", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("date", sa.Date, nullable=True),
        sa.Column("severity", sa.String(8), nullable=True),
        sa.Column("incident_id", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_postmortems"),
    )
    op.create_index("ix_postmortems_date", "postmortems", ["date"])
    op.create_index("ix_postmortems_incident_id", "postmortems", ["incident_id"])
    op.create_table(
        "postmortem_revisions",
        sa.Column("postmortem_id", sa.String(128), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("postmortem_id", "revision", name="pk_postmortem_revisions"),
        sa.ForeignKeyConstraint(
            ["postmortem_id"],
            ["postmortems.id"],
            name="fk_postmortem_revisions_postmortem_id_postmortems",
            ondelete="RESTRICT",
        ),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("update", "delete"):
            op.execute(_SQLITE_IMMUTABLE.format(op=name, OP=name.upper()))
    elif dialect == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS postmortem_revisions_no_update")
        op.execute("DROP TRIGGER IF EXISTS postmortem_revisions_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS postmortem_revisions_immutable ON postmortem_revisions")
        op.execute("DROP FUNCTION IF EXISTS rca_refuse_revision_change()")
    op.drop_table("postmortem_revisions")
    op.drop_index("ix_postmortems_incident_id", table_name="postmortems")
    op.drop_index("ix_postmortems_date", table_name="postmortems")
    op.drop_table("postmortems")
    op.drop_index("ix_incidents_started_at", table_name="incidents")
    op.drop_table("incidents")
