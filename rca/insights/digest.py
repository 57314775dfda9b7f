"""The digest: what a window of time brought, for a team's weekly look back (`rca digest`,
`GET /v1/digest`, the `digest.ready` event).

Over [since, until): incidents that started or were first recorded in it; postmortems
finalized from a draft or first imported in it (an import of old ones only counted); action
items that first appeared in it (an imported item appeared on its postmortem's date); the
action items overdue on the day the digest is made; recurrences proposed (and not dismissed
since) or confirmed in it. Each section is bounded (`limit` entries, the most pressing first)
and carries its total, so a rendering can say "and N more". What `rca.store.digest_queries`
reads counts as new: see there.

Digests go to chat and e-mail, so every free text in one (titles, action items, owners,
services, who decided) is redacted, with one placeholder table for the whole digest, and
clipped to `MAX_TEXT` characters.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Generic, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from rca.domain import ActionKind, ActionStatus, Priority, Severity
from rca.errors import InvalidArgument
from rca.redaction import PlaceholderTable, Redactor
from rca.store import digest_queries as queries
from rca.store.action_items import ActionItemRow
from rca.store.records import Store
from rca.store.recurrences import RecurrenceState

DEFAULT_LIMIT = 50
"""Entries per section unless asked otherwise."""
MAX_LIMIT = 200
MAX_TEXT = 300
"""Free text longer than this is clipped (with `…`)."""

HIDDEN = ("Cc", "Cf")
"""Control and format characters (terminal escapes, bidirectional overrides) are dropped."""
ZWJ = "\u200d"
"""The zero-width joiner is kept: emoji sequences need it."""

T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Section(_Model, Generic[T]):
    """Up to `limit` entries of a section, the most pressing first."""

    total: int
    """How many there are in all."""
    more: int
    """How many are left out of `items`."""
    items: list[T]


class Window(_Model):
    """What the digest covers."""

    since: datetime
    """Start, inclusive (UTC)."""
    until: datetime
    """End, exclusive (UTC)."""
    overdue_on: date
    """The day overdue action items are counted on (the day the digest was made, UTC)."""


class DigestIncident(_Model):
    """An incident that started, or was first recorded, in the window."""

    id: str
    title: str
    severity: Severity
    services: list[str]
    started_at: datetime
    recorded_at: datetime
    """When rca first stored it (later than the start for an incident opened late)."""
    detected_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    """None: still unresolved (as far as rca knows)."""
    link: str


class DigestPostmortem(_Model):
    """A postmortem finalized, or first imported, in the window."""

    id: str
    title: str
    severity: Severity | None
    date: date | None
    """The incident's date, as the postmortem says."""
    incident_id: str | None
    revision: int
    """Its newest revision saved in the window."""
    latest_revision: int
    how: Literal["finalized", "imported"]
    """`finalized`: a revision of the window came from a reviewed draft; `imported`: its
    first revision came in by import (files or the API)."""
    at: datetime
    """When that revision was saved."""
    link: str


class DigestActionItem(_Model):
    """An action item, as it stands now."""

    postmortem_id: str
    postmortem_title: str
    key: str
    text: str
    kind: ActionKind
    priority: Priority
    owner: str | None
    status: ActionStatus
    due_on: date | None
    appeared_at: datetime | None
    """When it first appeared: the finalization of the revision that brought it, or for an
    imported one the postmortem's date (midnight UTC) when that is earlier than the import (see
    `rca.store.action_rules`)."""
    days_late: int | None
    """Days past its due date on `overdue_on` (None: not overdue)."""
    link: str


class DigestRecurrence(_Model):
    """A postmortem found to repeat a past one."""

    postmortem_id: str
    postmortem_title: str
    past_postmortem_id: str
    past_postmortem_title: str
    state: RecurrenceState
    flagged: bool
    """Confirmed while the past postmortem still had open action items."""
    open_actions: list[str]
    """Those action items."""
    score: float
    at: datetime
    """When it was confirmed (else proposed)."""
    decided_by: str | None


class Counts(_Model):
    """The totals of the digest."""

    incidents: int
    incidents_by_severity: dict[str, int]
    incidents_unresolved: int
    incidents_backfilled: int
    """Incidents recorded in the window that had started over 30 days before it: history
    brought in (an import), counted but not listed."""
    postmortems: int
    postmortems_finalized: int
    postmortems_imported: int
    """Imported in the window and dated at most 30 days before it (listed)."""
    postmortems_backfilled: int
    """Postmortems first imported in the window dated over 30 days before it: history brought
    in, counted but not listed (nor in `postmortems`)."""
    new_action_items: int
    new_action_items_open: int
    """Of the new ones, those still open or in progress."""
    overdue_action_items: int
    recurrences: int
    recurrences_confirmed: int
    recurrences_proposed: int
    recurrences_flagged: int


class Digest(_Model):
    """What the window brought."""

    window: Window
    generated_at: datetime
    limit: int
    """The most entries of each section."""
    counts: Counts
    incidents: Section[DigestIncident]
    postmortems: Section[DigestPostmortem]
    new_action_items: Section[DigestActionItem]
    overdue_action_items: Section[DigestActionItem]
    recurrences: Section[DigestRecurrence]
    empty: bool
    """Nothing new, nothing overdue."""
    redacted: dict[str, int]
    """How many distinct values of each kind redaction replaced (`SECRET`, `EMAIL`, ...)."""


# --- building it ---------------------------------------------------------------------------


class _Clean:
    """Redacts and clips free text with one placeholder table."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.table = PlaceholderTable()

    def __call__(self, text: str) -> str:
        shown = "".join(c for c in text if c == ZWJ or unicodedata.category(c) not in HIDDEN)
        folded = " ".join(shown.split())
        found = self.redactor.redact(folded, self.table)
        return found if len(found) <= MAX_TEXT else found[: MAX_TEXT - 1].rstrip() + "…"

    def maybe(self, text: str | None) -> str | None:
        return None if text is None else self(text)


def _path(*parts: str) -> str:
    return "/v1/" + "/".join(quote(p, safe="") for p in parts)


def _after(start: datetime, seconds: int | None) -> datetime | None:
    return None if seconds is None else start + timedelta(seconds=seconds)


def _section(kind: type[Section[T]], items: list[T], total: int) -> Section[T]:
    return kind(total=total, more=max(0, total - len(items)), items=items)


def _action(row: ActionItemRow, clean: _Clean, today: date) -> DigestActionItem:
    late = (today - row.due_on).days if row.overdue and row.due_on else None
    return DigestActionItem(
        postmortem_id=row.postmortem_id,
        postmortem_title=clean(row.postmortem_title),
        key=row.key,
        text=clean(row.action.text),
        kind=row.action.kind,
        priority=row.action.priority,
        owner=clean.maybe(row.action.owner),
        status=row.action.status,
        due_on=row.due_on,
        appeared_at=row.created_at,
        days_late=late,
        link=_path("action-items", row.postmortem_id, row.key),
    )


def _incident(row: queries.IncidentRow, clean: _Clean) -> DigestIncident:
    return DigestIncident(
        id=row.id,
        title=clean(row.title),
        severity=row.severity,
        services=[clean(s) for s in row.services],
        started_at=row.started_at,
        recorded_at=row.recorded_at,
        detected_at=_after(row.started_at, row.ttd_s),
        mitigated_at=_after(row.started_at, row.ttm_s),
        resolved_at=_after(row.started_at, row.ttr_s),
        link=_path("incidents", row.id),
    )


def _postmortem(row: queries.PostmortemRow, clean: _Clean) -> DigestPostmortem:
    return DigestPostmortem(
        id=row.id,
        title=clean(row.title),
        severity=row.severity,
        date=row.date,
        incident_id=row.incident_id,
        revision=row.revision,
        latest_revision=row.latest_revision,
        how="finalized" if row.finalized else "imported",
        at=row.at,
        link=_path("postmortems", row.id),
    )


def _recurrence(row: queries.RecurrenceRow, clean: _Clean) -> DigestRecurrence:
    state = RecurrenceState(row.state)
    return DigestRecurrence(
        postmortem_id=row.postmortem_id,
        postmortem_title=clean(row.postmortem_title),
        past_postmortem_id=row.past_postmortem_id,
        past_postmortem_title=clean(row.past_postmortem_title),
        state=state,
        flagged=state is RecurrenceState.CONFIRMED and bool(row.open_actions),
        open_actions=[clean(a) for a in row.open_actions],
        score=row.score,
        at=row.decided_at
        if state is RecurrenceState.CONFIRMED and row.decided_at
        else row.proposed_at,
        decided_by=clean.maybe(row.decided_by),
    )


def build(
    store: Store,
    since: datetime,
    until: datetime,
    *,
    now: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    redactor: Redactor | None = None,
) -> Digest:
    """The digest of [since, until), its overdue items counted on the day of `now` (UTC)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit must be from 1 to {MAX_LIMIT}")
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidArgument("a digest window needs times with an offset")
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    if until <= since:
        raise InvalidArgument("since must be before until")
    made = (now or datetime.now(UTC)).astimezone(UTC)
    today = made.date()
    clean = _Clean(redactor or Redactor())
    engine = store.engine
    incidents = queries.incidents_between(engine, since, until, limit)
    postmortems = queries.postmortems_between(engine, since, until, limit)
    new_items = queries.actions_between(
        engine, since, until, limit, actions=store.actions, today=today
    )
    late = store.overdue_actions(today, limit)
    late_total = store.overdue_count(today)
    links = queries.recurrences_between(engine, since, until, limit)
    counts = Counts(
        incidents=incidents.total,
        incidents_by_severity=incidents.by_severity,
        incidents_unresolved=incidents.unresolved,
        incidents_backfilled=incidents.backfilled,
        postmortems=postmortems.total,
        postmortems_finalized=postmortems.finalized,
        postmortems_imported=postmortems.total - postmortems.finalized,
        postmortems_backfilled=postmortems.backfilled,
        new_action_items=new_items.total,
        new_action_items_open=new_items.still_open,
        overdue_action_items=late_total,
        recurrences=links.total,
        recurrences_confirmed=links.by_state.get(RecurrenceState.CONFIRMED.value, 0),
        recurrences_proposed=links.by_state.get(RecurrenceState.PROPOSED.value, 0),
        recurrences_flagged=links.flagged,
    )
    return Digest(
        window=Window(since=since, until=until, overdue_on=today),
        generated_at=made,
        limit=limit,
        counts=counts,
        incidents=_section(
            Section[DigestIncident], [_incident(r, clean) for r in incidents.items], incidents.total
        ),
        postmortems=_section(
            Section[DigestPostmortem],
            [_postmortem(r, clean) for r in postmortems.items],
            postmortems.total,
        ),
        new_action_items=_section(
            Section[DigestActionItem],
            [_action(r, clean, today) for r in new_items.items],
            new_items.total,
        ),
        overdue_action_items=_section(
            Section[DigestActionItem], [_action(r, clean, today) for r in late], late_total
        ),
        recurrences=_section(
            Section[DigestRecurrence], [_recurrence(r, clean) for r in links.items], links.total
        ),
        empty=not (
            incidents.total or postmortems.total or new_items.total or late_total or links.total
        ),
        redacted=clean.table.count(),
    )
