"""The system of record: incidents, postmortems and their revisions.

Every public write is one transaction. A stored postmortem revision never changes (the database
refuses updates and deletes of revisions); saving different content under the same id makes a
new revision, saving the same content changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from rca.config import Settings
from rca.db import (
    incidents,
    index_outbox,
    index_state,
    make_engine,
    migrate,
    postmortem_revisions,
    postmortems,
    read_transaction,
    write_transaction,
)
from rca.errors import Conflict, NotFound, StoreUnavailable
from rca.models import Incident, Postmortem, Severity, canonical_json, content_hash


class Outcome(StrEnum):
    """What a save did."""

    CREATED = "created"
    REVISED = "revised"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class SaveResult:
    """The result of saving one document."""

    kind: str
    id: str
    outcome: Outcome
    revision: int | None = None


@dataclass(frozen=True)
class StoredPostmortem:
    """A postmortem revision as stored."""

    postmortem: Postmortem
    revision: int
    latest_revision: int
    source: str
    created_at: datetime


@dataclass(frozen=True)
class PostmortemSummary:
    """One row of a postmortem listing."""

    id: str
    title: str
    date: str | None
    severity: Severity | None
    latest_revision: int
    updated_at: datetime


@dataclass(frozen=True)
class RevisionInfo:
    """One revision's metadata."""

    revision: int
    content_hash: str
    source: str
    created_at: datetime


@dataclass(frozen=True)
class IncidentSummary:
    """One row of an incident listing."""

    id: str
    title: str
    severity: Severity
    started_at: datetime


Document = Postmortem | Incident


def _now() -> datetime:
    return datetime.now(UTC)


class Store:
    """Reads and writes the system of record through one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, settings: Settings) -> Store:
        """Open (and migrate) the configured database."""
        try:
            engine = make_engine(settings)
        except Exception as err:  # a bad URL or missing driver: the operator must act
            raise StoreUnavailable(f"cannot open the database: {err}") from err
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    # --- writes ------------------------------------------------------------------------------

    def save(self, documents: Sequence[Document], source: str) -> list[SaveResult]:
        """Save several documents in one transaction: all of them, or none."""
        try:
            with write_transaction(self.engine) as conn:
                return [self._save_one(conn, doc, source) for doc in documents]
        except IntegrityError as err:
            raise Conflict(f"concurrent write collided, nothing saved: {err.orig}") from err
        except OperationalError as err:
            raise StoreUnavailable(f"database write failed, nothing saved: {err.orig}") from err

    def save_postmortem(self, postmortem: Postmortem, source: str) -> SaveResult:
        """Save one postmortem; a changed one becomes a new revision."""
        return self.save([postmortem], source)[0]

    def save_incident(self, incident: Incident, source: str) -> SaveResult:
        """Save one incident; a changed one replaces the stored version."""
        return self.save([incident], source)[0]

    def _save_one(self, conn: Connection, doc: Document, source: str) -> SaveResult:
        if isinstance(doc, Postmortem):
            return _save_postmortem(conn, doc, source)
        return _save_incident(conn, doc)

    # --- reads -------------------------------------------------------------------------------

    def get_postmortem(self, ident: str, revision: int | None = None) -> StoredPostmortem:
        """One revision of a postmortem (the latest by default)."""
        with read_transaction(self.engine) as conn:
            head = conn.execute(
                select(postmortems.c.latest_revision).where(postmortems.c.id == ident)
            ).scalar_one_or_none()
            if head is None:
                raise NotFound("postmortem", ident)
            wanted = head if revision is None else revision
            row = conn.execute(
                select(postmortem_revisions).where(
                    postmortem_revisions.c.postmortem_id == ident,
                    postmortem_revisions.c.revision == wanted,
                )
            ).one_or_none()
        if row is None:
            raise NotFound("postmortem revision", f"{ident}@{wanted}")
        return StoredPostmortem(
            postmortem=Postmortem.model_validate_json(row.document),
            revision=row.revision,
            latest_revision=head,
            source=row.source,
            created_at=row.created_at,
        )

    def list_postmortems(self) -> list[PostmortemSummary]:
        """Every postmortem, newest incident date first."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(postmortems).order_by(
                    postmortems.c.date.desc().nulls_last(), postmortems.c.id
                )
            ).all()
        return [
            PostmortemSummary(
                id=row.id,
                title=row.title,
                date=row.date.isoformat() if row.date else None,
                severity=Severity(row.severity) if row.severity else None,
                latest_revision=row.latest_revision,
                updated_at=row.updated_at,
            )
            for row in rows
        ]

    def revisions(self, ident: str) -> list[RevisionInfo]:
        """Every revision of one postmortem, oldest first."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(postmortem_revisions)
                .where(postmortem_revisions.c.postmortem_id == ident)
                .order_by(postmortem_revisions.c.revision)
            ).all()
        if not rows:
            raise NotFound("postmortem", ident)
        return [RevisionInfo(r.revision, r.content_hash, r.source, r.created_at) for r in rows]

    def get_incident(self, ident: str) -> Incident:
        """One incident."""
        with read_transaction(self.engine) as conn:
            document = conn.execute(
                select(incidents.c.document).where(incidents.c.id == ident)
            ).scalar_one_or_none()
        if document is None:
            raise NotFound("incident", ident)
        return Incident.model_validate_json(document)

    def list_incidents(self) -> list[IncidentSummary]:
        """Every incident, newest first."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(
                    incidents.c.id, incidents.c.title, incidents.c.severity, incidents.c.started_at
                ).order_by(incidents.c.started_at.desc(), incidents.c.id)
            ).all()
        return [IncidentSummary(r.id, r.title, Severity(r.severity), r.started_at) for r in rows]

    def incident_page(
        self,
        limit: int,
        after: tuple[datetime, str] | None = None,
        severities: Sequence[Severity] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[IncidentSummary]:
        """Up to `limit` incidents, newest first, after the (started_at, id) of the last one
        seen, optionally filtered by severity and start time."""
        query = select(
            incidents.c.id, incidents.c.title, incidents.c.severity, incidents.c.started_at
        )
        if after is not None:
            at, ident = after
            query = query.where(
                or_(
                    incidents.c.started_at < at,
                    and_(incidents.c.started_at == at, incidents.c.id > ident),
                )
            )
        if severities:
            query = query.where(incidents.c.severity.in_([s.value for s in severities]))
        if since is not None:
            query = query.where(incidents.c.started_at >= since)
        if until is not None:
            query = query.where(incidents.c.started_at <= until)
        query = query.order_by(incidents.c.started_at.desc(), incidents.c.id).limit(limit)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(query).all()
        return [IncidentSummary(r.id, r.title, Severity(r.severity), r.started_at) for r in rows]

    def create_incident(self, incident: Incident, source: str) -> SaveResult:
        """Save a new incident; the same content again is `unchanged`, other content under a
        known id is a conflict (an API client cannot overwrite an incident)."""
        try:
            with write_transaction(self.engine) as conn:
                stored = conn.execute(
                    select(incidents.c.content_hash).where(incidents.c.id == incident.id)
                ).scalar_one_or_none()
                if stored is not None and stored != content_hash(incident):
                    raise Conflict(f"incident {incident.id!r} exists with other content")
                return self._save_one(conn, incident, source)
        except IntegrityError as err:
            raise Conflict(f"concurrent write collided, nothing saved: {err.orig}") from err
        except OperationalError as err:
            raise StoreUnavailable(f"database write failed, nothing saved: {err.orig}") from err

    def latest_revisions(self) -> dict[str, int]:
        """Every postmortem id with its latest revision number."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(postmortems.c.id, postmortems.c.latest_revision)).all()
        return {row.id: row.latest_revision for row in rows}

    def latest_postmortems(
        self, ids: Sequence[str] | None = None, batch: int = 500
    ) -> Iterator[tuple[Postmortem, int]]:
        """The latest revision of every postmortem (or of the given ones), in id order."""
        wanted = sorted(set(ids)) if ids is not None else sorted(self.latest_revisions())
        for start in range(0, len(wanted), batch):
            chunk = wanted[start : start + batch]
            with read_transaction(self.engine) as conn:
                rows = conn.execute(
                    select(postmortem_revisions.c.document, postmortem_revisions.c.revision)
                    .join(
                        postmortems,
                        (postmortems.c.id == postmortem_revisions.c.postmortem_id)
                        & (postmortems.c.latest_revision == postmortem_revisions.c.revision),
                    )
                    .where(postmortems.c.id.in_(chunk))
                    .order_by(postmortems.c.id)
                ).all()
            for row in rows:
                yield Postmortem.model_validate_json(row.document), row.revision

    def fingerprint(self) -> str:
        """Changes whenever any postmortem revision is added.

        Revisions are numbered 1, 2, ... and never deleted, so the sum of the latest revision
        numbers is the number of revisions stored: it grows with every new one. It is read from
        the small `postmortems` table, not the revisions (whose rows carry whole documents).
        """
        with read_transaction(self.engine) as conn:
            total = conn.execute(select(func.sum(postmortems.c.latest_revision))).scalar_one()
        return str(total or 0)

    @property
    def index_state(self) -> IndexStateStore:
        """Outbox and index-state access."""
        return IndexStateStore(self.engine)

    def counts(self) -> dict[str, int]:
        """How many incidents, postmortems and postmortem revisions are stored."""
        with read_transaction(self.engine) as conn:
            return {
                "incidents": conn.execute(select(func.count()).select_from(incidents)).scalar_one(),
                "postmortems": conn.execute(
                    select(func.count()).select_from(postmortems)
                ).scalar_one(),
                "revisions": conn.execute(
                    select(func.count()).select_from(postmortem_revisions)
                ).scalar_one(),
            }


@dataclass(frozen=True)
class OutboxEntry:
    """A revision waiting to be indexed."""

    id: int
    postmortem_id: str
    revision: int


class IndexStateStore:
    """Outbox and index-state access for the indexer (part of the store, kept apart for clarity)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pending(self, limit: int = 500) -> list[OutboxEntry]:
        """The oldest outbox entries."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(index_outbox).order_by(index_outbox.c.id).limit(limit)).all()
        return [OutboxEntry(r.id, r.postmortem_id, r.revision) for r in rows]

    def pending_count(self) -> int:
        """How many outbox entries wait."""
        with read_transaction(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(index_outbox)).scalar_one())

    def acknowledge(self, up_to_id: int, postmortem_ids: Sequence[str] | None = None) -> int:
        """Delete handled entries (all up to an id, or only those of some postmortems)."""
        statement = delete(index_outbox).where(index_outbox.c.id <= up_to_id)
        if postmortem_ids is not None:
            statement = statement.where(index_outbox.c.postmortem_id.in_(list(postmortem_ids)))
        with write_transaction(self.engine) as conn:
            return conn.execute(statement).rowcount

    def last_outbox_id(self) -> int:
        """The newest outbox id, 0 when empty."""
        with read_transaction(self.engine) as conn:
            return int(conn.execute(select(func.max(index_outbox.c.id))).scalar_one() or 0)

    def get(self, name: str) -> str | None:
        """A stored index-state value."""
        with read_transaction(self.engine) as conn:
            value = conn.execute(
                select(index_state.c.value).where(index_state.c.name == name)
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def put(self, name: str, value: str) -> None:
        """Set an index-state value."""
        with write_transaction(self.engine) as conn:
            updated = conn.execute(
                update(index_state)
                .where(index_state.c.name == name)
                .values(value=value, updated_at=_now())
            ).rowcount
            if not updated:
                conn.execute(insert(index_state).values(name=name, value=value, updated_at=_now()))


def save_postmortem_in(conn: Connection, pm: Postmortem, source: str) -> SaveResult:
    """Save a postmortem inside the caller's write transaction (a new revision if changed,
    queued for indexing through the outbox)."""
    return _save_postmortem(conn, pm, source)


def _save_postmortem(conn: Connection, pm: Postmortem, source: str) -> SaveResult:
    digest = content_hash(pm)
    now = _now()
    head = conn.execute(
        select(postmortems.c.latest_revision).where(postmortems.c.id == pm.id).with_for_update()
    ).scalar_one_or_none()
    if head is not None:
        latest_hash = conn.execute(
            select(postmortem_revisions.c.content_hash).where(
                postmortem_revisions.c.postmortem_id == pm.id,
                postmortem_revisions.c.revision == head,
            )
        ).scalar_one()
        if latest_hash == digest:
            return SaveResult("postmortem", pm.id, Outcome.UNCHANGED, head)
    revision = 1 if head is None else head + 1
    summary = {
        "title": pm.title,
        "date": pm.date,
        "severity": pm.severity.value if pm.severity else None,
        "incident_id": pm.incident_id,
        "updated_at": now,
        "latest_revision": revision,
    }
    if head is None:
        conn.execute(insert(postmortems).values(id=pm.id, created_at=now, **summary))
    else:
        conn.execute(update(postmortems).where(postmortems.c.id == pm.id).values(**summary))
    conn.execute(
        insert(postmortem_revisions).values(
            postmortem_id=pm.id,
            revision=revision,
            content_hash=digest,
            document=canonical_json(pm),
            source=source,
            created_at=now,
        )
    )
    conn.execute(
        insert(index_outbox).values(postmortem_id=pm.id, revision=revision, created_at=now)
    )
    outcome = Outcome.CREATED if head is None else Outcome.REVISED
    return SaveResult("postmortem", pm.id, outcome, revision)


def _save_incident(conn: Connection, inc: Incident) -> SaveResult:
    digest = content_hash(inc)
    now = _now()
    stored = conn.execute(
        select(incidents.c.content_hash).where(incidents.c.id == inc.id).with_for_update()
    ).scalar_one_or_none()
    if stored == digest:
        return SaveResult("incident", inc.id, Outcome.UNCHANGED)
    values = {
        "title": inc.title,
        "severity": inc.severity.value,
        "started_at": inc.started_at,
        "content_hash": digest,
        "document": canonical_json(inc),
        "updated_at": now,
    }
    if stored is None:
        conn.execute(insert(incidents).values(id=inc.id, created_at=now, **values))
        return SaveResult("incident", inc.id, Outcome.CREATED)
    conn.execute(update(incidents).where(incidents.c.id == inc.id).values(**values))
    return SaveResult("incident", inc.id, Outcome.UPDATED)
