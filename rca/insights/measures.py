"""Computing the insights report: incidents by month and severity, times to detect, mitigate
and resolve (median and p90) by month, service and severity, and what the postmortems say
(failure modes, factor categories, services in the causal chain)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime

import numpy as np
from numpy.typing import NDArray

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
from rca.store.incident_facts import SEVERITY_CODES, IncidentColumns, incident_columns
from rca.store.postmortem_columns import count_facts, postmortem_columns
from rca.store.records import Store

MAX_YEARS = 10
DEFAULT_YEARS = 5
SEVERITIES = [s.value for s in Severity]
EPOCH = date(1970, 1, 1)
Ints = NDArray[np.int64]
Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]
log = logging.getLogger("rca.insights")


def default_range(today: date) -> tuple[date, date]:
    """The last five years, up to the end of this month."""
    until = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    return date(until.year - DEFAULT_YEARS, until.month, 1), until


def _years_before(until: date, years: int) -> date:
    """The first of `until`'s month, `years` earlier (no earlier than year 1)."""
    return date(max(1, until.year - years), until.month, 1)


def check_range(since: date, until: date) -> None:
    """InvalidArgument for a range that is empty, reversed or over ten years."""
    if until <= since:
        raise InvalidArgument("`until` must be after `since`")
    if (until - since).days > MAX_YEARS * 366:
        raise InvalidArgument(f"a range may span at most {MAX_YEARS} years")


def percentile(sorted_values: Sequence[int] | Ints, fraction: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not len(sorted_values):
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return float(sorted_values[rank - 1])


def median(sorted_values: Sequence[int] | Ints) -> float | None:
    """The middle value, or the mean of the two middle ones."""
    n = len(sorted_values)
    if not n:
        return None
    half = n // 2
    if n % 2:
        return float(sorted_values[half])
    return (int(sorted_values[half - 1]) + int(sorted_values[half])) / 2


def _spreads(keys: Ints, groups: int, values: Floats, totals: Ints) -> list[Spread]:
    """The spread of each group's values (NaN: the incident lacks it); `keys` says each
    value's group, `totals` how many incidents each group has."""
    known = ~np.isnan(values)
    key, value = keys[known], values[known].astype(np.int64)
    counts = np.bincount(key, minlength=groups)
    ordered = value
    if value.size:
        low = int(value.min())
        span = int(value.max()) - low + 1
        if groups * span < 2**62:  # one sort of group and value packed in one integer
            packed = np.sort(key * span + (value - low))
            ordered = packed - np.repeat(np.arange(groups), counts) * span + low
        else:
            ordered = value[np.lexsort((value, key))]
    ends = np.cumsum(counts).tolist()
    out = []
    for group, (count, end) in enumerate(zip(counts.tolist(), ends, strict=True)):
        mine = ordered[end - count : end]
        out.append(
            Spread(
                count=count,
                missing=int(totals[group]) - count,
                median_s=median(mine),
                p90_s=percentile(mine, 0.9),
            )
        )
    return out


def _group_times(keys: Ints, groups: int, times: Floats) -> list[Times]:
    """The times of each group of incidents: `times` is (detect, mitigate, resolve) by
    incident, `keys` says each incident's group."""
    totals = np.bincount(keys, minlength=groups)
    detect, mitigate, resolve = (_spreads(keys, groups, t, totals) for t in times)
    return [
        Times(incidents=int(n), detect=d, mitigate=m, resolve=r)
        for n, d, m, r in zip(totals.tolist(), detect, mitigate, resolve, strict=True)
    ]


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


def _month_number(day: date) -> int:
    return (day.year - 1970) * 12 + day.month - 1


def _incidents_in(
    c: IncidentColumns,
    since: date,
    until: date,
    services: Sequence[str],
    severities: Sequence[Severity],
) -> tuple[Ints, Bools]:
    """The incidents in the range and filters (their indexes), and which (incident, service)
    pairs the breakdown by service counts: those of these incidents, of the services asked for
    when some are."""
    chosen = (c.day >= (since - EPOCH).days) & (c.day < (until - EPOCH).days)
    if severities:
        chosen &= np.isin(c.severity, [SEVERITY_CODES[s.value] for s in severities])
    pairs = chosen[c.service_incident]
    if services:
        wanted = np.isin(c.service_code, [c.service_codes.get(s, -1) for s in services])
        named = np.zeros(len(c.ids), dtype=np.bool_)
        named[c.service_incident[wanted]] = True
        chosen &= named
        pairs &= wanted
    return np.flatnonzero(chosen), pairs


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
        since or (start if until is None else _years_before(until, DEFAULT_YEARS)),
        until or end,
    )
    check_range(since, until)
    pending = facts.catch_up(store)
    if pending:
        log.warning("insights: %d postmortems' facts not found yet, left out", pending)
    c = incident_columns(store.engine)
    rows, pairs = _incidents_in(c, since, until, services, severities)
    month_names = months_between(since, until)
    month = c.month[rows] - _month_number(since)
    severity = c.severity[rows]
    times = c.times[:, rows]
    counts = np.bincount(month * len(SEVERITIES) + severity, minlength=len(month_names) * 5)
    by_month = counts.reshape(len(month_names), len(SEVERITIES)).tolist()
    months = [
        MonthRow(month=name, by_severity=dict(zip(SEVERITIES, n, strict=True)), times=t)
        for name, n, t in zip(
            month_names, by_month, _group_times(month, len(month_names), times), strict=True
        )
    ]
    named, service = np.unique(c.service_code[pairs], return_inverse=True)
    service_times = _group_times(service, len(named), c.times[:, c.service_incident[pairs]])
    by_service = sorted(
        (
            GroupRow(key=c.services[k], times=t)
            for k, t in zip(named.tolist(), service_times, strict=True)
        ),
        key=lambda row: (-row.times.incidents, row.key),
    )
    severity_times = _group_times(severity, len(SEVERITIES), times)
    kinds = ["failure_mode", "factor_category", "chain_service", "service"]
    counted, total, undated = count_facts(
        postmortem_columns(store.engine), kinds, since, until, services, severities
    )
    names = {m.id: m.name for m in default_library().modes}
    return InsightsReport(
        range=Range(
            since=since,
            until=until,
            services=list(services),
            severities=[s.value for s in severities],
        ),
        incidents=len(rows),
        by_severity={s: t.incidents for s, t in zip(SEVERITIES, severity_times, strict=True)},
        times=_group_times(np.zeros(len(rows), dtype=np.int64), 1, times)[0],
        months=months,
        by_service=by_service,
        by_severity_times=[
            GroupRow(key=s, times=t)
            for s, t in zip(SEVERITIES, severity_times, strict=True)
            if t.incidents
        ],
        postmortems=total,
        undated_postmortems=undated,
        failure_modes=_counts(counted["failure_mode"], names),
        factor_categories=_counts(counted["factor_category"]),
        chain_services=_counts(counted["chain_service"]),
        recurrences=recurrences(store, since, until, services, severities, counted, total, names),
        stale_postmortems=pending,
        empty=not len(rows) and not total,
    )
