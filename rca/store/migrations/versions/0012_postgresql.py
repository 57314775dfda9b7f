"""What PostgreSQL needs that SQLite gave for free: at most one open link per outside key
(`ux_incident_links_open`, so two first notifications of one alert group at once cannot open
two incidents: SQLite's single writer kept them apart), a refused change of a stored revision
reported as an integrity violation (SQLSTATE 23001, as SQLite's trigger reports it) rather than
a generic error, and 64-bit incident durations (SQLite's integers always are).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-16
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION rca_refuse_revision_change() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION {message} USING ERRCODE = '{code}'; END
$$ LANGUAGE plpgsql
"""
_MESSAGE = "'postmortem revisions are immutable'"

# Links left open twice for one key (possible only on PostgreSQL, before this index): the
# newest stays open, the older ones close.
_CLOSE_DUPLICATES = """
UPDATE incident_links SET open = :closed WHERE open = :opened AND id NOT IN (
    SELECT MAX(id) FROM incident_links WHERE open = :opened GROUP BY source, external_key
)
"""


def upgrade() -> None:
    op.get_bind().execute(sa.text(_CLOSE_DUPLICATES), {"closed": False, "opened": True})
    where = sa.text("open")
    op.create_index(
        "ux_incident_links_open",
        "incident_links",
        ["source", "external_key"],
        unique=True,
        sqlite_where=where,
        postgresql_where=where,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION.format(message=_MESSAGE, code="restrict_violation"))
    _durations(sa.BigInteger())


def _durations(kind: sa.types.TypeEngine[int]) -> None:
    with op.batch_alter_table("incident_facts") as batch:
        for column in ("ttd_s", "ttm_s", "ttr_s"):
            batch.alter_column(column, type_=kind, existing_nullable=True)


def downgrade() -> None:
    _durations(sa.Integer())
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION.format(message=_MESSAGE, code="raise_exception"))
    op.drop_index("ux_incident_links_open", table_name="incident_links")
