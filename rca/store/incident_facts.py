"""Keeping `incident_facts` and `incident_services` in step with the incidents they describe
(written inside every incident save and change) and reading them back for the insights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from rca.domain import Incident, Severity
from rca.store.insight_tables import incident_facts, incident_services


def _seconds(span: timedelta | None) -> int | None:
    return None if span is None else int(span.total_seconds())


def facts_row(incident: Incident) -> dict[str, Any]:
    """The `incident_facts` row of an incident."""
    start = incident.started_at.astimezone(UTC)
    return {
        "incident_id": incident.id,
        "started_at": start,
        "month": start.strftime("%Y-%m"),
        "severity": incident.severity.value,
        "ttd_s": _seconds(incident.time_to_detect),
        "ttm_s": _seconds(incident.time_to_mitigate),
        "ttr_s": _seconds(incident.time_to_resolve),
    }


def note_incident(conn: Connection, incident: Incident) -> None:
    """Write the incident's facts and services, inside the caller's write transaction."""
    conn.execute(delete(incident_facts).where(incident_facts.c.incident_id == incident.id))
    conn.execute(delete(incident_services).where(incident_services.c.incident_id == incident.id))
    conn.execute(insert(incident_facts).values(**facts_row(incident)))
    services = list(dict.fromkeys(s[:100] for s in incident.services))
    if services:
        conn.execute(
            insert(incident_services),
            [{"incident_id": incident.id, "service": s} for s in services],
        )


@dataclass(frozen=True)
class IncidentFact:
    """One incident as the insights count it (one row per service when asked by service)."""

    incident_id: str
    month: str
    severity: Severity
    ttd_s: int | None
    ttm_s: int | None
    ttr_s: int | None
    service: str | None = None


def incident_facts_between(
    conn: Connection,
    since: datetime,
    until: datetime,
    services: Sequence[str] = (),
    severities: Sequence[Severity] = (),
    by_service: bool = False,
) -> list[IncidentFact]:
    """The incidents that started from `since` up to (not including) `until`, filtered by
    service (any of them) and severity; with `by_service`, one row per incident and service."""
    f = incident_facts.c
    columns = [f.incident_id, f.month, f.severity, f.ttd_s, f.ttm_s, f.ttr_s]
    query = select(*columns).where(f.started_at >= since, f.started_at < until)
    if severities:
        query = query.where(f.severity.in_([s.value for s in severities]))
    if by_service or services:
        query = query.join(incident_services, incident_services.c.incident_id == f.incident_id)
        query = query.add_columns(incident_services.c.service)
        if services:
            query = query.where(incident_services.c.service.in_(list(services)))
        if not by_service:
            query = query.distinct()
    rows = conn.execute(query).all()
    if by_service:
        return [IncidentFact(r[0], r[1], Severity(r[2]), r[3], r[4], r[5], r[6]) for r in rows]
    seen: set[str] = set()
    out = []
    for r in rows:
        if r[0] not in seen:
            seen.add(r[0])
            out.append(IncidentFact(r[0], r[1], Severity(r[2]), r[3], r[4], r[5]))
    return out
