"""The system of record: incidents, postmortems and their revisions.

Every public write is one transaction. A stored postmortem revision never changes (the database
refuses updates and deletes of revisions); saving different content under the same id makes a
new revision, saving the same content changes nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import date as CalendarDate
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from rca import audit
from rca.config import Settings
from rca.db import (
    action_status,
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
from rca.models import (
    ActionItem,
    ActionKind,
    ActionStatus,
    Incident,
    Postmortem,
    Priority,
    Severity,
    canonical_json,
    content_hash,
)


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

    # --- the API's pages, imports and action-item follow-up ----------------------------------

    def postmortem_page(
        self,
        limit: int,
        after: tuple[CalendarDate | None, str] | None = None,
        severities: Sequence[Severity] = (),
        services: Sequence[str] = (),
        since: CalendarDate | None = None,
        until: CalendarDate | None = None,
        title: str | None = None,
        batch: int = 200,
    ) -> list[PostmortemSummary]:
        """Up to `limit` postmortems, newest incident date first (undated ones last), after the
        (date, id) of the last one seen; filtered by severity, service (any of them), date
        range and a case-insensitive title substring.

        Services live only in the documents, so with a service filter the latest revisions are
        read `batch` rows at a time and filtered here until the page is full.
        """
        query = select(postmortems)
        if services:
            query = query.add_columns(postmortem_revisions.c.document).join(
                postmortem_revisions, _LATEST
            )
        if severities:
            query = query.where(postmortems.c.severity.in_([s.value for s in severities]))
        if since is not None:
            query = query.where(postmortems.c.date >= since)
        if until is not None:
            query = query.where(postmortems.c.date <= until)
        if title:
            escaped = title.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(postmortems.c.title.ilike(f"%{escaped}%", escape="\\"))
        wanted = set(services)
        found: list[PostmortemSummary] = []
        while len(found) < limit:
            size = batch if wanted else limit - len(found)
            page = query if after is None else query.where(_after_dated(*after))
            page = page.order_by(postmortems.c.date.desc().nulls_last(), postmortems.c.id)
            with read_transaction(self.engine) as conn:
                rows = conn.execute(page.limit(size)).all()
            for row in rows:
                after = (row.date, row.id)
                if wanted and not wanted & set(json.loads(row.document).get("services", [])):
                    continue
                found.append(_summary(row))
                if len(found) == limit:
                    break
            if len(rows) < size:
                break
        return found

    def import_postmortem(self, postmortem: Postmortem, source: str, actor: str) -> SaveResult:
        """Save one postmortem (a changed one becomes a new revision) and, when something was
        saved, record who did it in the audit trail, in the same transaction."""
        with _writing(self.engine) as conn:
            saved = _save_postmortem(conn, postmortem, source)
            if saved.outcome is not Outcome.UNCHANGED:
                audit.record(
                    conn,
                    actor,
                    f"postmortem.{saved.outcome.value}",
                    "postmortem",
                    postmortem.id,
                    revision=saved.revision,
                    source=source,
                )
            return saved

    def action_statuses(self, ident: str) -> dict[int, ActionStatusRecord]:
        """The tracked follow-up status of a postmortem's action items, by item index."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(action_status).where(action_status.c.postmortem_id == ident)
            ).all()
        return {r.item: _status_record(r) for r in rows}

    def action_item_page(
        self,
        limit: int,
        after: tuple[str, int] | None = None,
        statuses: Sequence[ActionStatus] = (),
        kinds: Sequence[ActionKind] = (),
        priorities: Sequence[Priority] = (),
        owner: str | None = None,
        postmortem_id: str | None = None,
        batch: int | None = None,
    ) -> list[ActionItemRow]:
        """Up to `limit` action items of the postmortems' latest revisions, with their current
        status, in (postmortem id, item index) order after the pair of the last one seen.

        Items live in the documents, so postmortems are read a batch at a time and their items
        filtered here (status by the current one, owner case-insensitively) until the page is
        full. The first batch is about what an unfiltered page needs (a postmortem has a few
        items; parsing documents is the cost), later batches double, up to 200.
        """
        batch = batch or limit // 3 + 1
        bound, inclusive = (after[0], True) if after is not None else (None, False)
        found: list[ActionItemRow] = []
        while len(found) < limit:
            query = select(
                postmortems.c.id, postmortems.c.title, postmortem_revisions.c.document
            ).join(postmortem_revisions, _LATEST)
            if postmortem_id is not None:
                query = query.where(postmortems.c.id == postmortem_id)
            if bound is not None:
                query = query.where(
                    postmortems.c.id >= bound if inclusive else postmortems.c.id > bound
                )
            with read_transaction(self.engine) as conn:
                rows = conn.execute(query.order_by(postmortems.c.id).limit(batch)).all()
                tracked = conn.execute(
                    select(action_status).where(
                        action_status.c.postmortem_id.in_([r.id for r in rows])
                    )
                ).all()
            records: dict[str, dict[int, ActionStatusRecord]] = defaultdict(dict)
            for r in tracked:
                records[r.postmortem_id][r.item] = _status_record(r)
            for row in rows:
                pm = Postmortem.model_validate_json(row.document)
                for item in with_statuses(pm, records[row.id]):
                    if after is not None and (row.id, item.item) <= after:
                        continue
                    if _matches(item.action, statuses, kinds, priorities, owner):
                        found.append(item)
                        if len(found) == limit:
                            return found
            if len(rows) < batch:
                break
            bound, inclusive = rows[-1].id, False
            batch = min(batch * 2, 200)
        return found

    def set_action_status(
        self, ident: str, item: int, status: ActionStatus, actor: str
    ) -> ActionItemRow:
        """Set the follow-up status of item `item` (0-based) of the postmortem's latest
        revision and record it in the audit trail, in one transaction; the same status again
        changes nothing."""
        with _writing(self.engine) as conn:
            row = conn.execute(
                select(postmortems.c.id, postmortem_revisions.c.document)
                .join(postmortem_revisions, _LATEST)
                .where(postmortems.c.id == ident)
            ).one_or_none()
            if row is None:
                raise NotFound("postmortem", ident)
            pm = Postmortem.model_validate_json(row.document)
            if not 0 <= item < len(pm.action_items):
                raise NotFound("action item", f"{ident}#{item}")
            key = and_(action_status.c.postmortem_id == ident, action_status.c.item == item)
            stored = conn.execute(select(action_status).where(key)).one_or_none()
            record = _status_record(stored) if stored is not None else None
            previous = record.status if record is not None else pm.action_items[item].status
            if previous is not status:
                record = ActionStatusRecord(status, actor, _now())
                values = {
                    "status": status.value,
                    "updated_by": actor,
                    "updated_at": record.updated_at,
                }
                if stored is None:
                    conn.execute(
                        insert(action_status).values(postmortem_id=ident, item=item, **values)
                    )
                else:
                    conn.execute(update(action_status).where(key).values(**values))
                audit.record(
                    conn,
                    actor,
                    "action_item.status_changed",
                    "postmortem",
                    ident,
                    item=item,
                    status=status.value,
                    previous=previous.value,
                )
            return with_statuses(pm, {item: record} if record is not None else {})[item]


@dataclass(frozen=True)
class ActionStatusRecord:
    """The tracked follow-up status of one action item (revisions never change, so the status
    is kept beside them)."""

    status: ActionStatus
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class ActionItemRow:
    """One action item of a postmortem, with its current status."""

    postmortem_id: str
    postmortem_title: str
    item: int
    """Position in the postmortem's `action_items`, 0-based."""
    action: ActionItem
    """The item, its status the tracked one when there is one."""
    updated_by: str | None = None
    updated_at: datetime | None = None


def with_statuses(pm: Postmortem, records: dict[int, ActionStatusRecord]) -> list[ActionItemRow]:
    """The postmortem's action items with the tracked statuses (by item index) applied."""
    rows = []
    for index, action in enumerate(pm.action_items):
        record = records.get(index)
        if record is None:
            rows.append(ActionItemRow(pm.id, pm.title, index, action))
            continue
        if record.status is not action.status:
            action = action.model_copy(update={"status": record.status})
        rows.append(
            ActionItemRow(pm.id, pm.title, index, action, record.updated_by, record.updated_at)
        )
    return rows


def _matches(
    action: ActionItem,
    statuses: Sequence[ActionStatus],
    kinds: Sequence[ActionKind],
    priorities: Sequence[Priority],
    owner: str | None,
) -> bool:
    if statuses and action.status not in statuses:
        return False
    if kinds and action.kind not in kinds:
        return False
    if priorities and action.priority not in priorities:
        return False
    return owner is None or (action.owner or "").casefold() == owner.strip().casefold()


def _status_record(row: Row[Any]) -> ActionStatusRecord:
    return ActionStatusRecord(ActionStatus(row.status), row.updated_by, row.updated_at)


def _summary(row: Row[Any]) -> PostmortemSummary:
    return PostmortemSummary(
        id=row.id,
        title=row.title,
        date=row.date.isoformat() if row.date else None,
        severity=Severity(row.severity) if row.severity else None,
        latest_revision=row.latest_revision,
        updated_at=row.updated_at,
    )


_LATEST = and_(
    postmortems.c.id == postmortem_revisions.c.postmortem_id,
    postmortems.c.latest_revision == postmortem_revisions.c.revision,
)
"""Joins a postmortem to its latest revision."""


def _after_dated(day: CalendarDate | None, ident: str) -> ColumnElement[bool]:
    """Rows after (day, ident) in (date descending, undated last; id) order."""
    if day is None:
        return and_(postmortems.c.date.is_(None), postmortems.c.id > ident)
    return or_(
        postmortems.c.date < day,
        and_(postmortems.c.date == day, postmortems.c.id > ident),
        postmortems.c.date.is_(None),
    )


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction whose collisions and failures become rca's errors."""
    try:
        with write_transaction(engine) as conn:
            yield conn
    except IntegrityError as err:
        raise Conflict(f"concurrent write collided, nothing saved: {err.orig}") from err
    except OperationalError as err:
        raise StoreUnavailable(f"database write failed, nothing saved: {err.orig}") from err


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
