"""What a digest reports over a window [since, until), read as a few indexed queries (no
incident or postmortem document is parsed): each section a bounded page and its total.

- incidents that started in the window, or were first recorded in it having started at most
  `LATE_DAYS` before it (opened late, or sent by a tool after the fact), the most severe
  first, then the newest; those recorded in it that started earlier are history brought in
  (an import of old incidents), only counted;
- postmortems with a revision in the window that was finalized from a draft (source
  `draft:...`), or whose first revision is in it (imported, or created through the API); each
  once, at its newest revision in the window; those first imported in it whose date is more
  than `LATE_DAYS` before it are history brought in, only counted;
- action items of the postmortems' latest revisions that first appeared in the window, those
  still to do first, must first (an imported item first appeared on its postmortem's date, see
  `rca.store.action_rules`, so imported history is not new);
- recurrences proposed in the window (and not dismissed since), or confirmed in it; flagged
  ones first.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, not_, or_, select

from rca.config import ActionSettings
from rca.domain import Priority, Severity
from rca.store.action_items import ActionItemRow, current_items, row_of
from rca.store.action_rules import FINALIZED_PREFIX, OPEN
from rca.store.action_tables import action_items
from rca.store.engine import incidents, postmortem_revisions, postmortems, read_transaction
from rca.store.insight_tables import incident_facts, incident_services
from rca.store.recurrence_tables import recurrence_links
from rca.store.recurrences import RecurrenceState

LATE_DAYS = 30
"""An incident recorded in the window that started up to this many days before it was opened
late and counts as new; one that started earlier is history brought in. Likewise a postmortem
first imported in the window and dated up to this many days before it."""
FINALIZED_SOURCE = f"{FINALIZED_PREFIX}%"
"""The source of a revision made by finalizing a draft (`draft:<draft id>`)."""


@dataclass(frozen=True)
class IncidentRow:
    """An incident of the window."""

    id: str
    title: str
    severity: Severity
    services: list[str]
    started_at: datetime
    recorded_at: datetime
    """When rca first stored it."""
    ttd_s: int | None
    ttm_s: int | None
    ttr_s: int | None


@dataclass(frozen=True)
class IncidentPage:
    """Up to `limit` incidents of the window, and counts over all of them."""

    items: list[IncidentRow]
    total: int
    by_severity: dict[str, int]
    """Every severity named, zero included."""
    unresolved: int
    """Those without a resolution time."""
    backfilled: int
    """Incidents recorded in the window that started more than `LATE_DAYS` before it."""


@dataclass(frozen=True)
class PostmortemRow:
    """A postmortem finalized or first imported in the window."""

    id: str
    title: str
    severity: Severity | None
    date: date | None
    incident_id: str | None
    revision: int
    """Its newest revision saved in the window."""
    latest_revision: int
    at: datetime
    """When that revision was saved."""
    finalized: bool
    """Whether a revision of the window was finalized from a draft (else: imported)."""


@dataclass(frozen=True)
class PostmortemPage:
    items: list[PostmortemRow]
    total: int
    finalized: int
    backfilled: int
    """Postmortems first imported in the window dated more than `LATE_DAYS` before it (not in
    `items` or `total`)."""


@dataclass(frozen=True)
class ActionPage:
    items: list[ActionItemRow]
    total: int
    still_open: int
    """How many of them are open or in progress now."""


@dataclass(frozen=True)
class RecurrenceRow:
    """A recurrence proposed or confirmed in the window, with both postmortems' titles."""

    postmortem_id: str
    postmortem_title: str
    past_postmortem_id: str
    past_postmortem_title: str
    state: str
    score: float
    open_actions: list[str]
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None


@dataclass(frozen=True)
class RecurrencePage:
    items: list[RecurrenceRow]
    total: int
    by_state: dict[str, int]
    flagged: int


def _in(column: Any, since: datetime, until: datetime) -> Any:
    return and_(column >= since, column < until)


def incidents_between(engine: Engine, since: datetime, until: datetime, limit: int) -> IncidentPage:
    """The incidents that started or were first recorded in [since, until)."""
    i, f = incidents.c, incident_facts.c
    late = since - timedelta(days=LATE_DAYS)
    recorded = _in(i.created_at, since, until)
    window = or_(_in(i.started_at, since, until), and_(recorded, i.started_at >= late))
    history = select(func.count()).select_from(incidents).where(recorded, i.started_at < late)
    query = (
        select(i.id, i.title, i.severity, i.started_at, i.created_at, f.ttd_s, f.ttm_s, f.ttr_s)
        .outerjoin(incident_facts, f.incident_id == i.id)
        .where(window)
        .order_by(i.severity, i.started_at.desc(), i.id)
        .limit(limit)
    )
    counts = (
        select(i.severity, func.count(), func.count(case((f.ttr_s.is_(None), 1))))
        .outerjoin(incident_facts, f.incident_id == i.id)
        .where(window)
        .group_by(i.severity)
    )
    with read_transaction(engine) as conn:
        rows = conn.execute(query).all()
        grouped = conn.execute(counts).all()
        backfilled = int(conn.execute(history).scalar_one())
        named = conn.execute(
            select(incident_services.c.incident_id, incident_services.c.service).where(
                incident_services.c.incident_id.in_([r.id for r in rows])
            )
        ).all()
    services: dict[str, list[str]] = {}
    for incident_id, service in named:
        services.setdefault(incident_id, []).append(service)
    by_severity = dict.fromkeys((s.value for s in Severity), 0)
    for severity, count, _ in grouped:
        by_severity[severity] = by_severity.get(severity, 0) + count
    items = [
        IncidentRow(
            r.id,
            r.title,
            Severity(r.severity),
            sorted(services.get(r.id, [])),
            r.started_at,
            r.created_at,
            r.ttd_s,
            r.ttm_s,
            r.ttr_s,
        )
        for r in rows
    ]
    unresolved = sum(row[2] for row in grouped)
    return IncidentPage(items, sum(by_severity.values()), by_severity, unresolved, backfilled)


def postmortems_between(
    engine: Engine, since: datetime, until: datetime, limit: int
) -> PostmortemPage:
    """The postmortems finalized, or first imported, in [since, until), newest first; those
    imported dated more than `LATE_DAYS` before `since` only counted."""
    r, p = postmortem_revisions.c, postmortems.c
    late = (since - timedelta(days=LATE_DAYS)).date()
    finalized = func.max(case((r.source.like(FINALIZED_SOURCE), 1), else_=0))
    touched = select(p.id).where(p.updated_at >= since)  # the latest revision's time
    window = (
        select(
            r.postmortem_id.label("id"),
            func.max(r.revision).label("revision"),
            func.max(r.created_at).label("at"),
            finalized.label("finalized"),
        )
        .where(r.postmortem_id.in_(touched), _in(r.created_at, since, until))
        .group_by(r.postmortem_id)
        .having(or_(finalized == 1, func.min(r.revision) == 1))
        .subquery()
    )
    w = window.c
    history = and_(w.finalized == 0, p.date.is_not(None), p.date < late)  # never null
    query = (
        select(w.id, w.revision, w.at, w.finalized, p.title, p.severity, p.date, p.incident_id)
        .add_columns(p.latest_revision)
        .join(postmortems, p.id == w.id)
        .where(not_(history))
        .order_by(w.at.desc(), w.id)
        .limit(limit)
    )
    counts = select(
        func.count(case((not_(history), 1))), func.sum(w.finalized), func.count(case((history, 1)))
    ).select_from(window.join(postmortems, p.id == w.id))
    with read_transaction(engine) as conn:
        rows = conn.execute(query).all()
        total, done, backfilled = conn.execute(counts).one()
    items = [
        PostmortemRow(
            row.id,
            row.title,
            Severity(row.severity) if row.severity else None,
            row.date,
            row.incident_id,
            row.revision,
            row.latest_revision,
            row.at,
            bool(row.finalized),
        )
        for row in rows
    ]
    return PostmortemPage(items, int(total), int(done or 0), int(backfilled))


PRIORITY_ORDER = {p.value: n for n, p in enumerate(Priority)}


def actions_between(
    engine: Engine,
    since: datetime,
    until: datetime,
    limit: int,
    *,
    actions: ActionSettings,
    today: date,
) -> ActionPage:
    """The action items of the latest revisions that first appeared in [since, until): those
    still to do first, must first, then the newest."""
    t = action_items.c
    window = _in(t.created_at, since, until)
    query = (
        current_items()
        .where(window)
        .order_by(
            case((t.status.in_([s.value for s in OPEN]), 0), else_=1),
            case(PRIORITY_ORDER, value=t.priority, else_=len(PRIORITY_ORDER)),
            t.created_at.desc(),
            t.postmortem_id,
            t.position,
        )
        .limit(limit)
    )
    counted = (
        select(t.status, func.count()).where(t.position.is_not(None), window).group_by(t.status)
    )
    with read_transaction(engine) as conn:
        rows = conn.execute(query).all()
        statuses: Counter[str] = Counter()
        for status, count in conn.execute(counted).all():
            statuses[status] += count
    open_now = sum(statuses[s.value] for s in OPEN)
    items = [row_of(r, r.postmortem_title, actions, today) for r in rows]
    return ActionPage(items, sum(statuses.values()), open_now)


def recurrences_between(
    engine: Engine, since: datetime, until: datetime, limit: int
) -> RecurrencePage:
    """Recurrences proposed in [since, until) and not dismissed since, or confirmed in it;
    flagged first, then confirmed, then the newest."""
    proposed, confirmed, dismissed = (s.value for s in RecurrenceState)
    link = recurrence_links.c
    newer, past = postmortems.alias("newer"), postmortems.alias("past")
    window = or_(
        and_(_in(link.proposed_at, since, until), link.state != dismissed),
        and_(link.state == confirmed, _in(link.decided_at, since, until)),
    )
    flagged = and_(link.state == confirmed, link.open_actions != "[]")
    query = (
        select(
            recurrence_links,
            newer.c.title.label("postmortem_title"),
            past.c.title.label("past_postmortem_title"),
        )
        .join(newer, newer.c.id == link.postmortem_id)
        .join(past, past.c.id == link.past_postmortem_id)
        .where(window)
        .order_by(
            case((flagged, 0), (link.state == confirmed, 1), else_=2),
            func.coalesce(link.decided_at, link.proposed_at).desc(),
            link.postmortem_id,
            link.past_postmortem_id,
        )
        .limit(limit)
    )
    counted = select(link.state, func.count(), func.count(case((flagged, 1)))).where(window)
    with read_transaction(engine) as conn:
        rows = conn.execute(query).all()
        grouped = conn.execute(counted.group_by(link.state)).all()
    by_state = {proposed: 0, confirmed: 0}
    for state, count, _ in grouped:
        by_state[state] = by_state.get(state, 0) + count
    items = [
        RecurrenceRow(
            row.postmortem_id,
            row.postmortem_title,
            row.past_postmortem_id,
            row.past_postmortem_title,
            row.state,
            row.score,
            [str(a) for a in json.loads(row.open_actions)],
            row.proposed_at,
            row.decided_by,
            row.decided_at,
        )
        for row in rows
    ]
    return RecurrencePage(items, sum(by_state.values()), by_state, sum(row[2] for row in grouped))
