"""The `Store` facade over the system of record: one object, one engine, every read and write of
incidents (`incident_records`) and their revisions (`incident_changes`), postmortems and their
revisions (`postmortem_records`), action items and their follow-up (`action_items`,
`action_updates`, `action_measures`) and the index outbox (`outbox`), delegated to those
modules.

Every public write is one transaction. A stored postmortem revision never changes (the database
refuses updates and deletes of revisions); saving different content under the same id makes a
new revision, saving the same content changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date as CalendarDate
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select

from rca.config import ActionSettings, Settings
from rca.domain import ActionKind, ActionStatus, Incident, Postmortem, Priority, Severity
from rca.domain.additions import IncidentChange
from rca.errors import StoreUnavailable
from rca.store import (
    action_items,
    action_measures,
    action_updates,
    incident_changes,
    incident_records,
    postmortem_pages,
    postmortem_records,
)
from rca.store.action_items import ActionItemRow, ActionStatusRecord
from rca.store.action_measures import ActionMeasures
from rca.store.action_updates import ActionChange, HistoryEntry
from rca.store.engine import (
    incidents,
    make_engine,
    migrate,
    postmortem_revisions,
    postmortems,
    read_transaction,
)
from rca.store.incident_changes import ChangeResult, IncidentRevision
from rca.store.incident_records import IncidentSummary, StoredIncident
from rca.store.outbox import IndexStateStore
from rca.store.postmortem_records import PostmortemSummary, RevisionInfo, StoredPostmortem
from rca.store.writes import SaveResult, writing

Document = Postmortem | Incident


class Store:
    """Reads and writes the system of record through one SQLAlchemy engine."""

    def __init__(self, engine: Engine, actions: ActionSettings | None = None) -> None:
        self.engine = engine
        self.actions = actions or ActionSettings()
        """Default due dates of action items by priority."""

    @classmethod
    def open(cls, settings: Settings) -> Store:
        """Open (and migrate) the configured database."""
        try:
            engine = make_engine(settings)
        except Exception as err:  # a bad URL or missing driver: the operator must act
            raise StoreUnavailable(f"cannot open the database: {err}") from err
        migrate(engine)
        return cls(engine, settings.actions)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    # --- writes ------------------------------------------------------------------------------

    def save(self, documents: Sequence[Document], source: str) -> list[SaveResult]:
        """Save several documents in one transaction: all of them, or none."""
        with writing(self.engine) as conn:
            return [_save_one(conn, doc, source) for doc in documents]

    def save_postmortem(self, postmortem: Postmortem, source: str) -> SaveResult:
        """Save one postmortem; a changed one becomes a new revision."""
        return self.save([postmortem], source)[0]

    def save_incident(self, incident: Incident, source: str) -> SaveResult:
        """Save one incident; a changed one replaces the stored version."""
        return self.save([incident], source)[0]

    def create_incident(self, incident: Incident, source: str, actor: str = "api") -> SaveResult:
        """Save a new incident; the same content again is `unchanged`, other content under a
        known id is a conflict (an API client cannot overwrite an incident). Its first
        revision records `actor` and `source`."""
        return incident_records.create_incident(self.engine, incident, actor, source)

    def change_incident(
        self, ident: str, change: IncidentChange, actor: str, source: str
    ) -> ChangeResult:
        """Append evidence to a stored incident or set what a tool knows of it; a change that
        alters it becomes its next revision (see `rca.store.incident_changes`)."""
        return incident_changes.change_incident(self.engine, ident, change, actor, source)

    def import_postmortem(self, postmortem: Postmortem, source: str, actor: str) -> SaveResult:
        """Save one postmortem (a changed one becomes a new revision) and, when something was
        saved, record who did it in the audit trail, in the same transaction."""
        return postmortem_records.import_postmortem(self.engine, postmortem, source, actor)

    def set_action_status(
        self, ident: str, item: int | str, status: ActionStatus, actor: str
    ) -> ActionItemRow:
        """Set the follow-up status of an item (its key, or 0-based position) of the
        postmortem's latest revision, with a history row and an audit entry, in one
        transaction; the same status again changes nothing."""
        return action_updates.set_action_status(
            self.engine, ident, item, status, actor, actions=self.actions
        )

    def change_action_item(
        self,
        ident: str,
        item: int | str,
        change: ActionChange,
        actor: str,
        today: CalendarDate | None = None,
    ) -> ActionItemRow:
        """Change an item's status, due date and tracker reference in one transaction, each
        change recorded (see `action_updates.change_action_item`)."""
        return action_updates.change_action_item(
            self.engine, ident, item, change, actor, actions=self.actions, today=today
        )

    # --- postmortems and their revisions -----------------------------------------------------

    def get_postmortem(self, ident: str, revision: int | None = None) -> StoredPostmortem:
        """One revision of a postmortem (the latest by default)."""
        return postmortem_records.get_postmortem(self.engine, ident, revision)

    def postmortem_with_items(
        self, ident: str, revision: int | None = None, today: CalendarDate | None = None
    ) -> tuple[StoredPostmortem, list[ActionItemRow]]:
        """One revision of a postmortem (the latest by default) and its action items: on the
        latest revision with their tracked state (`with_statuses`), on an older one as it was
        recorded; read in one transaction."""
        with read_transaction(self.engine) as conn:
            row = postmortem_records.revision_row(conn, ident, revision)
            latest = row.revision == row.latest_revision
            records = (
                action_items.statuses_in(conn, ident, actions=self.actions, today=today)
                if latest
                else {}
            )
        stored = postmortem_records.stored_postmortem(ident, row)
        return stored, action_items.with_statuses(stored.postmortem, records)

    def list_postmortems(self) -> list[PostmortemSummary]:
        """Every postmortem, newest incident date first."""
        return postmortem_pages.list_postmortems(self.engine)

    def revisions(self, ident: str) -> list[RevisionInfo]:
        """Every revision of one postmortem, oldest first."""
        return postmortem_records.revisions(self.engine, ident)

    def latest_revisions(self) -> dict[str, int]:
        """Every postmortem id with its latest revision number."""
        return postmortem_records.latest_revisions(self.engine)

    def latest_postmortems(
        self, ids: Sequence[str] | None = None, batch: int = 500
    ) -> Iterator[tuple[Postmortem, int]]:
        """The latest revision of every postmortem (or of the given ones), in id order."""
        return postmortem_records.latest_postmortems(self.engine, ids, batch)

    def fingerprint(self) -> str:
        """Changes whenever any postmortem revision is added.

        Revisions are numbered 1, 2, ... and never deleted, so the sum of the latest revision
        numbers is the number of revisions stored: it grows with every new one. It is read from
        the small `postmortems` table, not the revisions (whose rows carry whole documents).
        """
        return postmortem_records.fingerprint(self.engine)

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
        range and a case-insensitive title substring."""
        return postmortem_pages.postmortem_page(
            self.engine, limit, after, severities, services, since, until, title, batch
        )

    # --- incidents ---------------------------------------------------------------------------

    def get_incident(self, ident: str) -> Incident:
        """One incident."""
        return incident_records.get_incident(self.engine, ident)

    def read_incident(self, ident: str) -> StoredIncident:
        """One incident, with a note for each value left out as today's rules refuse it."""
        return incident_records.read_incident(self.engine, ident)

    def incident_revisions(self, ident: str) -> list[IncidentRevision]:
        """Every revision of an incident, oldest first."""
        return incident_changes.revisions(self.engine, ident)

    def incident_at(self, ident: str, revision: int) -> Incident:
        """The incident as it was at `revision`."""
        return incident_changes.incident_at(self.engine, ident, revision)

    def list_incidents(self) -> list[IncidentSummary]:
        """Every incident, newest first."""
        return incident_records.list_incidents(self.engine)

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
        return incident_records.incident_page(self.engine, limit, after, severities, since, until)

    # --- action items ------------------------------------------------------------------------

    def action_statuses(
        self, ident: str, today: CalendarDate | None = None
    ) -> dict[int, ActionStatusRecord]:
        """The tracked state of a postmortem's action items, by position."""
        return action_items.action_statuses(self.engine, ident, actions=self.actions, today=today)

    def action_item_page(
        self,
        limit: int,
        after: tuple[str, int] | None = None,
        statuses: Sequence[ActionStatus] = (),
        kinds: Sequence[ActionKind] = (),
        priorities: Sequence[Priority] = (),
        owner: str | None = None,
        postmortem_id: str | None = None,
        overdue: bool | None = None,
        due_before: CalendarDate | None = None,
        today: CalendarDate | None = None,
    ) -> list[ActionItemRow]:
        """Up to `limit` action items of the postmortems' latest revisions, with their current
        status, in (postmortem id, position) order after the pair of the last one seen
        (see `action_items.action_item_page`)."""
        return action_items.action_item_page(
            self.engine,
            limit,
            after,
            statuses,
            kinds,
            priorities,
            owner,
            postmortem_id,
            actions=self.actions,
            overdue=overdue,
            due_before=due_before,
            today=today,
        )

    def action_history(
        self, ident: str, item: int | str, limit: int, after: int | None = None
    ) -> list[HistoryEntry]:
        """One item's changes, oldest first (see `action_updates.action_history`)."""
        return action_updates.action_history(self.engine, ident, item, limit, after)

    def overdue_actions(self, today: CalendarDate, limit: int) -> list[ActionItemRow]:
        """Up to `limit` items overdue on `today`, the earliest due first."""
        return action_measures.overdue(self.engine, today, limit, actions=self.actions)

    def overdue_count(self, today: CalendarDate) -> int:
        """How many items are overdue on `today`."""
        return action_measures.overdue_count(self.engine, today, actions=self.actions)

    def action_measures(
        self,
        since: CalendarDate,
        until: CalendarDate,
        services: Sequence[str] = (),
        severities: Sequence[Severity] = (),
        today: CalendarDate | None = None,
    ) -> ActionMeasures:
        """Completion rate, overdue count and open items' age over the postmortems dated in
        [since, until) (see `action_measures.action_measures`; today: UTC by default)."""
        return action_measures.action_measures(
            self.engine,
            since,
            until,
            services,
            severities,
            today=today or action_items.today_utc(),
            actions=self.actions,
        )

    # --- the index outbox and totals ---------------------------------------------------------

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


def _save_one(conn: Connection, doc: Document, source: str) -> SaveResult:
    """Save one document inside the caller's write transaction (looked up through the modules,
    so a test can make one of them fail)."""
    if isinstance(doc, Postmortem):
        return postmortem_records.save_postmortem_in(conn, doc, source)
    return incident_records.save_incident_in(conn, doc, "import", source)
