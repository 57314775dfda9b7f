"""Computing the insights report: incidents by month and severity, times to detect, mitigate
and resolve (median and p90) by month, service and severity, and what the postmortems say
(failure modes, factor categories, services in the causal chain)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime

from rca.domain import Severity
from rca.drafting.remedies import default_library
from rca.errors import InvalidArgument
from rca.insights import facts
from rca.insights.recurrence_rates import recurrences
from rca.insights.report import (
    Count,
    GroupRow,
    InsightsReport,
    MonthRow,
    Range,
    Spread,
    Times,
)
from rca.store.engine import read_transaction
from rca.store.incident_facts import IncidentFact, incident_facts_between
from rca.store.postmortem_facts import fact_counts
from rca.store.records import Store

MAX_YEARS = 10
DEFAULT_YEARS = 5
SEVERITIES = [s.value for s in Severity]


def default_range(today: date) -> tuple[date, date]:
    """The last five years, up to the end of this month."""
    until = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    return date(until.year - DEFAULT_YEARS, until.month, 1), until


def check_range(since: date, until: date) -> None:
    """InvalidArgument for a range that is empty, reversed or over ten years."""
    if until <= since:
        raise InvalidArgument("`until` must be after `since`")
    if (until - since).days > MAX_YEARS * 366:
        raise InvalidArgument(f"a range may span at most {MAX_YEARS} years")


def percentile(sorted_values: Sequence[int], fraction: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return float(sorted_values[rank - 1])


def median(sorted_values: Sequence[int]) -> float | None:
    """The middle value, or the mean of the two middle ones."""
    n = len(sorted_values)
    if not n:
        return None
    half = n // 2
    return (
        float(sorted_values[half]) if n % 2 else (sorted_values[half - 1] + sorted_values[half]) / 2
    )


def spread(values: list[int | None]) -> Spread:
    """The spread of some incidents' times (None: the incident lacks it)."""
    known = sorted(v for v in values if v is not None)
    return Spread(
        count=len(known),
        missing=len(values) - len(known),
        median_s=median(known),
        p90_s=percentile(known, 0.9),
    )


def times(rows: Sequence[IncidentFact]) -> Times:
    """Times over some incidents."""
    return Times(
        incidents=len(rows),
        detect=spread([r.ttd_s for r in rows]),
        mitigate=spread([r.ttm_s for r in rows]),
        resolve=spread([r.ttr_s for r in rows]),
    )


def months_between(since: date, until: date) -> list[str]:
    """Every `YYYY-MM` from the month of `since` to the month before `until` (or of it, when
    `until` is not the first of a month)."""
    out = []
    year, month = since.year, since.month
    last = (until.year, until.month) if until.day > 1 else _previous(until.year, until.month)
    while (year, month) <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _previous(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _counts(values: dict[str, int], names: dict[str, str] | None = None) -> list[Count]:
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Count(key=k, name=(names or {}).get(k, k), postmortems=v) for k, v in ranked]


def report(
    store: Store,
    since: date | None = None,
    until: date | None = None,
    services: Sequence[str] = (),
    severities: Sequence[Severity] = (),
    today: date | None = None,
) -> InsightsReport:
    """The insights over incidents that started, and postmortems dated, in [since, until)."""
    start, end = default_range(today or datetime.now(UTC).date())
    since, until = (
        since or (start if until is None else date(until.year - DEFAULT_YEARS, until.month, 1)),
        until or end,
    )
    check_range(since, until)
    facts.refresh(store)
    low = datetime(since.year, since.month, since.day, tzinfo=UTC)
    high = datetime(until.year, until.month, until.day, tzinfo=UTC)
    with read_transaction(store.engine) as conn:
        rows = incident_facts_between(conn, low, high, services, severities)
        per_service = incident_facts_between(conn, low, high, services, severities, by_service=True)
    by_month: dict[str, list[IncidentFact]] = defaultdict(list)
    for row in rows:
        by_month[row.month].append(row)
    months = []
    for month in months_between(since, until):
        found = by_month.get(month, [])
        counts = dict.fromkeys(SEVERITIES, 0)
        for row in found:
            counts[row.severity.value] += 1
        months.append(MonthRow(month=month, by_severity=counts, times=times(found)))
    grouped: dict[str, list[IncidentFact]] = defaultdict(list)
    for row in per_service:
        grouped[row.service or ""].append(row)
    by_service = [
        GroupRow(key=k, times=times(v))
        for k, v in sorted(grouped.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    severity_rows: dict[str, list[IncidentFact]] = defaultdict(list)
    for row in rows:
        severity_rows[row.severity.value].append(row)
    kinds = ["failure_mode", "factor_category", "chain_service", "service"]
    counted, total, undated = fact_counts(store.engine, kinds, since, until, services, severities)
    names = {m.id: m.name for m in default_library().modes}
    return InsightsReport(
        range=Range(
            since=since,
            until=until,
            services=list(services),
            severities=[s.value for s in severities],
        ),
        incidents=len(rows),
        by_severity={s: len(severity_rows.get(s, [])) for s in SEVERITIES},
        times=times(rows),
        months=months,
        by_service=by_service,
        by_severity_times=[
            GroupRow(key=s, times=times(severity_rows[s]))
            for s in SEVERITIES
            if severity_rows.get(s)
        ],
        postmortems=total,
        undated_postmortems=undated,
        failure_modes=_counts(counted["failure_mode"], names),
        factor_categories=_counts(counted["factor_category"]),
        chain_services=_counts(counted["chain_service"]),
        recurrences=recurrences(store, since, until, services, severities, counted, total, names),
        empty=not rows and not total,
    )
