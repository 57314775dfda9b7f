"""Incident revisions: every stored state of an incident, and changes made after creation.

An incident starts at revision 1; each change that alters it (evidence appended, a time set by
an integration, a new version imported) stores the whole new document as the next revision,
with who made it, from where, and what it added. Earlier revisions never change, so a draft
that records the revision it was written from can always be traced to exactly that evidence.
A change that alters nothing (a redelivered webhook) makes no revision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, insert, select, update

from rca.domain import Incident, canonical_json, content_hash
from rca.domain.additions import Applied, EvidenceTaken, IncidentChange, apply
from rca.errors import Conflict, InvalidArgument, NotFound
from rca.store.engine import incidents, read_transaction
from rca.store.incident_facts import note_incident
from rca.store.integration_tables import incident_revisions
from rca.store.readback import incident_from_stored
from rca.store.services_seen import note_services
from rca.store.writes import now, writing


@dataclass(frozen=True)
class IncidentRevision:
    """One stored state of an incident, without its document."""

    revision: int
    created_at: datetime
    actor: str
    source: str
    change: dict[str, Any]
    """What this revision did: `created`, the evidence ids `added`, the `fields` set."""


@dataclass(frozen=True)
class ChangeResult:
    """What a change did to an incident."""

    incident: Incident
    revision: int
    added: list[str]
    repeated: list[str]
    fields: list[str]


def record_revision(
    conn: Connection,
    incident: Incident,
    revision: int,
    change: dict[str, Any],
    actor: str,
    source: str,
) -> None:
    """Store `incident` as its revision `revision`, inside the caller's write transaction."""
    conn.execute(
        insert(incident_revisions).values(
            incident_id=incident.id,
            revision=revision,
            content_hash=content_hash(incident),
            document=canonical_json(incident),
            change=json.dumps(change, sort_keys=True),
            actor=actor[:100],
            source=source[:100],
            created_at=now(),
        )
    )


def change_incident_in(
    conn: Connection, ident: str, change: IncidentChange, actor: str, source: str
) -> ChangeResult:
    """Apply `change` to a stored incident inside the caller's write transaction."""
    row = conn.execute(
        select(incidents.c.document, incidents.c.revision)
        .where(incidents.c.id == ident)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound("incident", ident)
    incident, set_aside = incident_from_stored(ident, row.document)
    if set_aside:
        raise Conflict(
            f"incident {ident!r} holds values today's rules refuse ({set_aside[0]}); "
            "import a corrected copy before adding to it"
        )
    try:
        applied: Applied = apply(incident, change)
    except EvidenceTaken as err:
        raise Conflict(f"{err}; evidence once stored never changes: leave the id out") from None
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        raise InvalidArgument(f"the change cannot apply: {first['msg']}") from None
    except ValueError as err:
        raise InvalidArgument(f"the change cannot apply: {err}") from None
    if not applied.changed:
        return ChangeResult(incident, row.revision, [], applied.repeated, [])
    revision = row.revision + 1
    new = applied.incident
    conn.execute(
        update(incidents)
        .where(incidents.c.id == ident)
        .values(
            title=new.title,
            severity=new.severity.value,
            started_at=new.started_at,
            content_hash=content_hash(new),
            document=canonical_json(new),
            revision=revision,
            updated_at=now(),
        )
    )
    note_services(conn, new.services)
    note_incident(conn, new)
    what = {"added": applied.added, "fields": applied.fields}
    record_revision(conn, new, revision, what, actor, source)
    return ChangeResult(new, revision, applied.added, applied.repeated, applied.fields)


def change_incident(
    engine: Engine, ident: str, change: IncidentChange, actor: str, source: str
) -> ChangeResult:
    """Apply `change` to a stored incident in one transaction (see `change_incident_in`)."""
    with writing(engine) as conn:
        return change_incident_in(conn, ident, change, actor, source)


def revisions(engine: Engine, ident: str) -> list[IncidentRevision]:
    """Every revision of an incident, oldest first."""
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(
                incident_revisions.c.revision,
                incident_revisions.c.created_at,
                incident_revisions.c.actor,
                incident_revisions.c.source,
                incident_revisions.c.change,
            )
            .where(incident_revisions.c.incident_id == ident)
            .order_by(incident_revisions.c.revision)
        ).all()
        if not rows and not _exists(conn, ident):
            raise NotFound("incident", ident)
    return [
        IncidentRevision(r.revision, r.created_at, r.actor, r.source, json.loads(r.change))
        for r in rows
    ]


def incident_at(engine: Engine, ident: str, revision: int) -> Incident:
    """The incident as it was at `revision`."""
    with read_transaction(engine) as conn:
        document = conn.execute(
            select(incident_revisions.c.document).where(
                incident_revisions.c.incident_id == ident,
                incident_revisions.c.revision == revision,
            )
        ).scalar_one_or_none()
        if document is None:
            if not _exists(conn, ident):
                raise NotFound("incident", ident)
            raise NotFound("incident revision", f"{ident}@{revision}")
    return incident_from_stored(ident, document)[0]


def _exists(conn: Connection, ident: str) -> bool:
    found = conn.execute(select(incidents.c.id).where(incidents.c.id == ident)).first()
    return found is not None
