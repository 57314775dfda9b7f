"""Incidents: saving (a changed incident replaces the stored version), creating through the API
(which cannot overwrite one), reading one, listings and pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    insert,
    or_,
    select,
    update,
)

from rca.domain import Incident, Severity, canonical_json, content_hash
from rca.errors import Conflict, NotFound
from rca.store.engine import incidents, read_transaction
from rca.store.incident_changes import record_revision
from rca.store.incident_facts import note_incident
from rca.store.readback import SetAside, incident_from_stored
from rca.store.services_seen import note_services
from rca.store.writes import Outcome, SaveResult, now, writing


@dataclass(frozen=True)
class IncidentSummary:
    """One row of an incident listing."""

    id: str
    title: str
    severity: Severity
    started_at: datetime


def save_incident_in(
    conn: Connection, inc: Incident, actor: str = "import", source: str = "import"
) -> SaveResult:
    """Save an incident inside the caller's write transaction (a changed one replaces the stored
    version and becomes its next revision)."""
    digest = content_hash(inc)
    stamp = now()
    row = conn.execute(
        select(incidents.c.content_hash, incidents.c.revision)
        .where(incidents.c.id == inc.id)
        .with_for_update()
    ).one_or_none()
    stored = row.content_hash if row is not None else None
    if stored == digest:
        return SaveResult("incident", inc.id, Outcome.UNCHANGED, row.revision if row else None)
    revision = 1 if row is None else row.revision + 1
    values = {
        "title": inc.title,
        "severity": inc.severity.value,
        "started_at": inc.started_at,
        "content_hash": digest,
        "document": canonical_json(inc),
        "revision": revision,
        "updated_at": stamp,
    }
    note_services(conn, inc.services)
    if row is None:
        conn.execute(insert(incidents).values(id=inc.id, created_at=stamp, **values))
        record_revision(conn, inc, revision, {"created": True}, actor, source)
        note_incident(conn, inc)
        return SaveResult("incident", inc.id, Outcome.CREATED, revision)
    conn.execute(update(incidents).where(incidents.c.id == inc.id).values(**values))
    note_incident(conn, inc)
    record_revision(conn, inc, revision, {"replaced": True}, actor, source)
    return SaveResult("incident", inc.id, Outcome.UPDATED, revision)


def create_incident(
    engine: Engine, incident: Incident, actor: str = "api", source: str = "api"
) -> SaveResult:
    """Save a new incident; the same content again is `unchanged`, other content under a
    known id is a conflict (an API client cannot overwrite an incident)."""
    with writing(engine) as conn:
        stored = conn.execute(
            select(incidents.c.content_hash).where(incidents.c.id == incident.id)
        ).scalar_one_or_none()
        if stored is not None and stored != content_hash(incident):
            raise Conflict(f"incident {incident.id!r} exists with other content")
        return save_incident_in(conn, incident, actor, source)


@dataclass(frozen=True)
class StoredIncident:
    """An incident as read back, and what of it was left out as today's rules refuse it."""

    incident: Incident
    set_aside: tuple[SetAside, ...] = ()
    revision: int = 1
    """The incident's current revision (see `rca.store.incident_changes`)."""


_STORED = select(incidents.c.document, incidents.c.revision).where(
    incidents.c.id == bindparam("ident")
)
"""One incident's document and revision (built once: one built per call costs more than
running it)."""


def read_incident(engine: Engine, ident: str) -> StoredIncident:
    """One incident, with a note for each value left out (see `rca.store.readback`)."""
    with read_transaction(engine) as conn:
        row = conn.execute(_STORED, {"ident": ident}).one_or_none()
    if row is None:
        raise NotFound("incident", ident)
    incident, set_aside = incident_from_stored(ident, row.document)
    return StoredIncident(incident, tuple(set_aside), row.revision)


def get_incident(engine: Engine, ident: str) -> Incident:
    """One incident."""
    return read_incident(engine, ident).incident


def list_incidents(engine: Engine) -> list[IncidentSummary]:
    """Every incident, newest first."""
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(
                incidents.c.id, incidents.c.title, incidents.c.severity, incidents.c.started_at
            ).order_by(incidents.c.started_at.desc(), incidents.c.id)
        ).all()
    return [IncidentSummary(r.id, r.title, Severity(r.severity), r.started_at) for r in rows]


def incident_page(
    engine: Engine,
    limit: int,
    after: tuple[datetime, str] | None = None,
    severities: Sequence[Severity] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[IncidentSummary]:
    """Up to `limit` incidents, newest first, after the (started_at, id) of the last one
    seen, optionally filtered by severity and start time."""
    query = _page_query(after is not None, bool(severities), since is not None, until is not None)
    values = {
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "severities": [s.value for s in severities],
        "since": since,
        "until": until,
        "page_size": limit,
    }
    with read_transaction(engine) as conn:
        rows = conn.execute(query, values).all()
    return [IncidentSummary(i, title, Severity(severity), at) for i, title, severity, at in rows]


@cache
def _page_query(after: bool, severities: bool, since: bool, until: bool) -> Select[Any]:
    """`incident_page`'s statement for the filters given, their values bound parameters:
    built once for each combination (one built per call costs more than running it)."""
    query = select(incidents.c.id, incidents.c.title, incidents.c.severity, incidents.c.started_at)
    if after:
        at: BindParameter[datetime] = bindparam("after_at")
        query = query.where(
            or_(
                incidents.c.started_at < at,
                and_(incidents.c.started_at == at, incidents.c.id > bindparam("after_id")),
            )
        )
    if severities:
        query = query.where(incidents.c.severity.in_(bindparam("severities", expanding=True)))
    if since:
        query = query.where(incidents.c.started_at >= bindparam("since"))
    if until:
        query = query.where(incidents.c.started_at <= bindparam("until"))
    query = query.order_by(incidents.c.started_at.desc(), incidents.c.id)
    return query.limit(bindparam("page_size"))
