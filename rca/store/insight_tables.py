"""The tables the insights read instead of the documents: each incident's times and services,
and each postmortem's facts (failure modes, contributing-factor categories, services in its
causal chain), so measures over 100,000 incidents are a few indexed queries.

Declared on the same `metadata` as `rca.store.engine`'s tables (migration 0008 creates them).
Incident facts are written with every incident save; postmortem facts by `rca.insights.facts`
(finding failure modes needs the drafting library, which the store does not import).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table

from rca.store.engine import ID, UTCDateTime, metadata

incident_facts = Table(
    "incident_facts",
    metadata,
    Column("incident_id", ID, ForeignKey("incidents.id"), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("month", String(7), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("ttd_s", BigInteger, nullable=True),
    Column("ttm_s", BigInteger, nullable=True),
    Column("ttr_s", BigInteger, nullable=True),
)
"""One row per incident: the UTC month it started, its severity and its times to detect,
mitigate and resolve in seconds (null when the incident does not say; 64-bit, as an incident
may say it was resolved centuries after it started)."""
Index("ix_incident_facts_started_at", incident_facts.c.started_at)

incident_services = Table(
    "incident_services",
    metadata,
    Column("incident_id", ID, ForeignKey("incidents.id"), primary_key=True),
    Column("service", String(100), primary_key=True),
)
"""The services each incident names."""
Index("ix_incident_services_service", incident_services.c.service)

postmortem_facts = Table(
    "postmortem_facts",
    metadata,
    Column("postmortem_id", ID, ForeignKey("postmortems.id"), primary_key=True),
    Column("kind", String(24), primary_key=True),
    Column("value", String(100), primary_key=True),
)
"""What a postmortem's latest revision says, one fact a row: `service`, `failure_mode`,
`factor_category`, `chain_service`."""
Index("ix_postmortem_facts_kind_value", postmortem_facts.c.kind, postmortem_facts.c.value)

postmortem_fact_state = Table(
    "postmortem_fact_state",
    metadata,
    Column("postmortem_id", ID, ForeignKey("postmortems.id"), primary_key=True),
    Column("revision", Integer, nullable=False),
)
"""Which revision each postmortem's facts were found in; a newer revision makes them stale."""
