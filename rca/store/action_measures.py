"""Overdue action items and the action-item measures the insights show, read from the
`action_items` rows (indexed queries, no document parsed).

- `overdue(engine, today, limit, actions=...)`: the overdue items, longest overdue first;
- `overdue_count(engine, today, actions=...)`: how many there are;
- `action_measures(engine, since, until, services, ...)`: over the postmortems dated from `since`
  up to (not including) `until`, how many items are in each status, the completion rate
  (done / (all - won't do)), the overdue ones, and the age of the open ones (open or in
  progress: days since the item first appeared; median, and 90th percentile by nearest rank).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date

from sqlalchemy import Engine, func, select

from rca.config import ActionSettings
from rca.domain import ActionStatus, Priority, Severity
from rca.store.action_items import ActionItemRow, current_items, row_of
from rca.store.action_rules import OPEN, days_for, due_date, is_overdue, overdue_now
from rca.store.action_tables import action_items
from rca.store.engine import postmortems, read_transaction
from rca.store.insight_tables import postmortem_facts


@dataclass(frozen=True)
class ActionMeasures:
    """Action items of the postmortems of a date range (their latest revisions)."""

    items: int
    """Action items in all."""
    by_status: dict[str, int]
    """How many are in each status (every status named, zero included)."""
    completion_rate: float | None
    """done / (all - won't do); None when nothing is left to count."""
    overdue: int
    """Open or in progress and due before `today`."""
    open_items: int
    """Open or in progress."""
    open_age_median_days: float | None
    """Median age of the open or in-progress items, in days since each first appeared."""
    open_age_p90_days: float | None
    """Their 90th percentile age (nearest rank), in days."""


def overdue(
    engine: Engine, today: date, limit: int, *, actions: ActionSettings
) -> list[ActionItemRow]:
    """Up to `limit` items overdue on `today`, the earliest due first (then by postmortem id
    and position). Reads at most `limit` rows per way of being due (a date set, or the
    default of each priority)."""
    t = action_items.c
    late = current_items().where(overdue_now(today, actions))
    queries = [late.where(t.due_on.is_not(None)).order_by(t.due_on, t.postmortem_id, t.position)]
    for priority in Priority:
        if days_for(priority, actions) is not None:
            queries.append(
                late.where(t.due_on.is_(None), t.priority == priority.value).order_by(
                    t.created_at, t.postmortem_id, t.position
                )
            )
    found: list[ActionItemRow] = []
    with read_transaction(engine) as conn:
        for query in queries:
            rows = conn.execute(query.limit(limit)).all()
            found += [row_of(r, r.postmortem_title, actions, today) for r in rows]
    found.sort(key=lambda r: (r.due_on or today, r.postmortem_id, r.item))
    return found[:limit]


def overdue_count(engine: Engine, today: date, *, actions: ActionSettings) -> int:
    """How many items are overdue on `today`."""
    query = (
        select(func.count())
        .select_from(action_items)
        .where(action_items.c.position.is_not(None), overdue_now(today, actions))
    )
    with read_transaction(engine) as conn:
        return int(conn.execute(query).scalar_one())


def action_measures(
    engine: Engine,
    since: date,
    until: date,
    services: Sequence[str] = (),
    severities: Sequence[Severity] = (),
    *,
    today: date,
    actions: ActionSettings,
) -> ActionMeasures:
    """The action-item measures over the postmortems dated from `since` up to (not including)
    `until`, optionally only those naming one of `services` (their `service` facts: refresh
    them first, see `rca.insights.facts.refresh`) or of one of `severities`."""
    t = action_items.c
    pm = postmortems.c
    query = (
        select(t.status, t.priority, t.due_on, t.created_at)
        .join(postmortems, pm.id == t.postmortem_id)
        .where(t.position.is_not(None), pm.date >= since, pm.date < until)
    )
    if severities:
        query = query.where(pm.severity.in_([s.value for s in severities]))
    if services:
        facts = postmortem_facts.c
        query = query.where(
            pm.id.in_(
                select(facts.postmortem_id).where(
                    facts.kind == "service", facts.value.in_(list(services))
                )
            )
        )
    with read_transaction(engine) as conn:
        rows = conn.execute(query).all()
    counts = Counter(r.status for r in rows)
    ages: list[int] = []
    late = 0
    for r in rows:
        status = ActionStatus(r.status)
        if status not in OPEN:
            continue
        appeared = r.created_at.astimezone(UTC).date()
        ages.append(max(0, (today - appeared).days))
        due = due_date(r.due_on, Priority(r.priority), r.created_at, actions)
        late += is_overdue(status, due, today)
    ages.sort()
    counted = len(rows) - counts[ActionStatus.WONT_DO.value]
    return ActionMeasures(
        items=len(rows),
        by_status={s.value: counts[s.value] for s in ActionStatus},
        completion_rate=counts[ActionStatus.DONE.value] / counted if counted else None,
        overdue=late,
        open_items=len(ages),
        open_age_median_days=_median(ages),
        open_age_p90_days=_nearest_rank(ages, 0.9),
    )


def _median(values: Sequence[int]) -> float | None:
    n = len(values)
    if not n:
        return None
    half = n // 2
    return float(values[half]) if n % 2 else (values[half - 1] + values[half]) / 2


def _nearest_rank(values: Sequence[int], fraction: float) -> float | None:
    if not values:
        return None
    return float(values[max(1, math.ceil(fraction * len(values))) - 1])
