"""Recurrences: proposing links from a postmortem to past ones of the same failure, deciding
them, and reading them back (from either side) and over a date range."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, insert, or_, select, update

from rca.errors import NotFound
from rca.store import audit
from rca.store.engine import postmortems, read_transaction
from rca.store.recurrence_tables import recurrence_links
from rca.store.writes import now, writing


class RecurrenceState(StrEnum):
    """Where a proposed recurrence stands."""

    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


@dataclass(frozen=True)
class Proposal:
    """A past postmortem that may be the same failure, and why."""

    past_postmortem_id: str
    score: float
    reasons: list[str]


@dataclass(frozen=True)
class Recurrence:
    """A link between a postmortem and a past one."""

    postmortem_id: str
    past_postmortem_id: str
    state: RecurrenceState
    score: float
    reasons: list[str]
    open_actions: list[str]
    """The past postmortem's action items still open when this was confirmed: a fix that was
    promised and had not landed when the failure came back."""
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None

    @property
    def flagged(self) -> bool:
        """Confirmed while a related action item of the past postmortem was still open."""
        return self.state is RecurrenceState.CONFIRMED and bool(self.open_actions)


def _recurrence(row: Any) -> Recurrence:
    return Recurrence(
        row.postmortem_id,
        row.past_postmortem_id,
        RecurrenceState(row.state),
        row.score,
        json.loads(row.reasons),
        json.loads(row.open_actions),
        row.proposed_at,
        row.decided_by,
        row.decided_at,
    )


def propose(engine: Engine, postmortem_id: str, proposals: Sequence[Proposal]) -> int:
    """Store new proposals (a pair already proposed or decided is left as it is); how many."""
    added = 0
    with writing(engine) as conn:
        for proposal in proposals:
            if proposal.past_postmortem_id == postmortem_id:
                continue
            known = conn.execute(
                select(recurrence_links.c.state).where(
                    recurrence_links.c.postmortem_id == postmortem_id,
                    recurrence_links.c.past_postmortem_id == proposal.past_postmortem_id,
                )
            ).first()
            if known is not None:
                continue
            conn.execute(
                insert(recurrence_links).values(
                    postmortem_id=postmortem_id,
                    past_postmortem_id=proposal.past_postmortem_id,
                    state=RecurrenceState.PROPOSED.value,
                    score=proposal.score,
                    reasons=json.dumps(proposal.reasons),
                    open_actions="[]",
                    proposed_at=now(),
                )
            )
            added += 1
    return added


def recurrences_of(engine: Engine, postmortem_id: str) -> list[Recurrence]:
    """The links of a postmortem, as the newer side and as the past one, proposed first."""
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(recurrence_links).where(
                or_(
                    recurrence_links.c.postmortem_id == postmortem_id,
                    recurrence_links.c.past_postmortem_id == postmortem_id,
                )
            )
        ).all()
    order = {state: n for n, state in enumerate(RecurrenceState)}
    found = [_recurrence(r) for r in rows]
    return sorted(found, key=lambda r: (order[r.state], -r.score, r.past_postmortem_id))


def decide(
    engine: Engine,
    postmortem_id: str,
    past_postmortem_id: str,
    confirm: bool,
    actor: str,
    open_actions: Sequence[str],
) -> Recurrence:
    """Confirm or dismiss a proposed (or earlier decided) recurrence, with the past
    postmortem's still-open action items when confirming; recorded in the audit trail."""
    state = RecurrenceState.CONFIRMED if confirm else RecurrenceState.DISMISSED
    where = and_(
        recurrence_links.c.postmortem_id == postmortem_id,
        recurrence_links.c.past_postmortem_id == past_postmortem_id,
    )
    with writing(engine) as conn:
        row = conn.execute(select(recurrence_links).where(where)).one_or_none()
        if row is None:
            raise NotFound("recurrence", f"{postmortem_id} → {past_postmortem_id}")
        conn.execute(
            update(recurrence_links)
            .where(where)
            .values(
                state=state.value,
                open_actions=json.dumps(list(open_actions) if confirm else []),
                decided_by=actor[:100],
                decided_at=now(),
            )
        )
        audit.record(
            conn,
            actor,
            f"recurrence.{state.value}",
            "postmortem",
            postmortem_id,
            past_postmortem_id=past_postmortem_id,
            open_actions=list(open_actions),
        )
        return _recurrence(conn.execute(select(recurrence_links).where(where)).one())


@dataclass(frozen=True)
class ListedRecurrence:
    """A recurrence with what a list shows of both postmortems."""

    link: Recurrence
    title: str
    on: date | None
    """The later postmortem's date."""
    severity: str | None
    past_title: str
    past_on: date | None


def listed_between(
    engine: Engine,
    since: date,
    until: date,
    states: Sequence[RecurrenceState] = (RecurrenceState.CONFIRMED,),
    severities: Sequence[str] = (),
) -> list[ListedRecurrence]:
    """Recurrences in the given states whose later postmortem is dated in [since, until)
    (and has one of `severities`, when given), newest first."""
    later, past = postmortems.alias("later"), postmortems.alias("past")
    links = recurrence_links.c
    query = (
        select(
            recurrence_links,
            later.c.title,
            later.c.date,
            later.c.severity,
            past.c.title.label("past_title"),
            past.c.date.label("past_date"),
        )
        .join(later, later.c.id == links.postmortem_id)
        .join(past, past.c.id == links.past_postmortem_id)
        .where(
            links.state.in_([s.value for s in states]),
            later.c.date >= since,
            later.c.date < until,
        )
        .order_by(later.c.date.desc(), links.postmortem_id, links.past_postmortem_id)
    )
    if severities:
        query = query.where(later.c.severity.in_(list(severities)))
    with read_transaction(engine) as conn:
        rows = conn.execute(query).all()
    return [
        ListedRecurrence(_recurrence(r), r.title, r.date, r.severity, r.past_title, r.past_date)
        for r in rows
    ]
