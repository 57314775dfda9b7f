"""The insights' tables: each incident's month, severity and times (filled from the stored
incidents), the services each incident names, and postmortem facts (found later, by
`rca.insights.facts`, since that needs the drafting library).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from rca.store.engine import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(128)


def upgrade() -> None:
    op.create_table(
        "incident_facts",
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("ttd_s", sa.Integer, nullable=True),
        sa.Column("ttm_s", sa.Integer, nullable=True),
        sa.Column("ttr_s", sa.Integer, nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_incident_facts_incident_id_incidents"
        ),
        sa.PrimaryKeyConstraint("incident_id", name="pk_incident_facts"),
    )
    op.create_index("ix_incident_facts_started_at", "incident_facts", ["started_at"])
    op.create_table(
        "incident_services",
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_incident_services_incident_id_incidents"
        ),
        sa.PrimaryKeyConstraint("incident_id", "service", name="pk_incident_services"),
    )
    op.create_index("ix_incident_services_service", "incident_services", ["service"])
    op.create_table(
        "postmortem_facts",
        sa.Column("postmortem_id", ID, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("value", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(
            ["postmortem_id"],
            ["postmortems.id"],
            name="fk_postmortem_facts_postmortem_id_postmortems",
        ),
        sa.PrimaryKeyConstraint("postmortem_id", "kind", "value", name="pk_postmortem_facts"),
    )
    op.create_index("ix_postmortem_facts_kind_value", "postmortem_facts", ["kind", "value"])
    op.create_table(
        "postmortem_fact_state",
        sa.Column("postmortem_id", ID, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(
            ["postmortem_id"],
            ["postmortems.id"],
            name="fk_postmortem_fact_state_postmortem_id_postmortems",
        ),
        sa.PrimaryKeyConstraint("postmortem_id", name="pk_postmortem_fact_state"),
    )
    _fill_incident_facts()


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


def _fill_incident_facts() -> None:
    """One facts row and the service rows of every stored incident, read in batches."""
    conn = op.get_bind()
    facts = sa.table(
        "incident_facts",
        sa.column("incident_id"),
        sa.column("started_at", UTCDateTime),
        sa.column("month"),
        sa.column("severity"),
        sa.column("ttd_s"),
        sa.column("ttm_s"),
        sa.column("ttr_s"),
    )
    services = sa.table("incident_services", sa.column("incident_id"), sa.column("service"))
    batch: list[dict[str, Any]] = []
    named: list[dict[str, Any]] = []
    for ident, document in conn.execute(sa.text("SELECT id, document FROM incidents")).all():
        try:
            data = json.loads(document)
        except ValueError:
            continue
        start = _moment(data.get("started_at"))
        if start is None:
            continue

        def seconds(name: str, start: datetime = start, data: dict[str, Any] = data) -> int | None:
            moment = _moment(data.get(name))
            return int((moment - start).total_seconds()) if moment and moment >= start else None

        batch.append(
            {
                "incident_id": ident,
                "started_at": start,
                "month": start.strftime("%Y-%m"),
                "severity": str(data.get("severity", "SEV3"))[:8],
                "ttd_s": seconds("detected_at"),
                "ttm_s": seconds("mitigated_at"),
                "ttr_s": seconds("resolved_at"),
            }
        )
        names = [s[:100] for s in data.get("services") or [] if isinstance(s, str) and s.strip()]
        named.extend({"incident_id": ident, "service": s} for s in dict.fromkeys(names))
    if batch:
        op.bulk_insert(facts, batch)
    if named:
        op.bulk_insert(services, named)


def downgrade() -> None:
    for table in (
        "postmortem_fact_state",
        "postmortem_facts",
        "incident_services",
        "incident_facts",
    ):
        op.drop_table(table)
