"""Keeping `incident_facts` and `incident_services` in step with the incidents they describe
(written inside every incident save and change), and reading them back for the insights as
columns (`incident_columns`).

The columns are kept in memory per engine and brought up to date on every read, cheaply: on
SQLite every incident write also appends to `incident_revisions`, whose rowid only grows (writers
are serialised), so its maximum says whether anything changed and the rows above the last one
seen say which incidents to read again. A count of `incident_facts` catches what the revisions
cannot show (rows removed by hand); a large change reads everything again. On PostgreSQL
(where sequences may commit out of order, so "above the last one seen" could miss a row) the
version is the number of incident revisions, which are never deleted: any write changes it, and
the columns are read again in full only then.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
)

from rca.domain import Incident, Severity
from rca.store.engine import read_transaction
from rca.store.insight_tables import incident_facts, incident_services
from rca.store.integration_tables import incident_revisions

SEVERITY_CODES = {s.value: code for code, s in enumerate(Severity)}
"""Severities as small integers, in `Severity`'s order (SEV1 is 0)."""
CATCH_UP_LIMIT = 2000
"""More changed incidents than this since the last read: read all of them again."""
_EPOCH = date(1970, 1, 1)
_CHUNK = 500
_BATCH = 10_000


def _seconds(span: timedelta | None) -> int | None:
    return None if span is None else int(span.total_seconds())


def facts_row(incident: Incident) -> dict[str, Any]:
    """The `incident_facts` row of an incident."""
    start = incident.started_at.astimezone(UTC)
    return {
        "incident_id": incident.id,
        "started_at": start,
        "month": start.strftime("%Y-%m"),
        "severity": incident.severity.value,
        "ttd_s": _seconds(incident.time_to_detect),
        "ttm_s": _seconds(incident.time_to_mitigate),
        "ttr_s": _seconds(incident.time_to_resolve),
    }


def note_incident(conn: Connection, incident: Incident) -> None:
    """Write the incident's facts and services, inside the caller's write transaction."""
    conn.execute(delete(incident_facts).where(incident_facts.c.incident_id == incident.id))
    conn.execute(delete(incident_services).where(incident_services.c.incident_id == incident.id))
    conn.execute(insert(incident_facts).values(**facts_row(incident)))
    services = list(dict.fromkeys(s[:100] for s in incident.services))
    if services:
        conn.execute(
            insert(incident_services),
            [{"incident_id": incident.id, "service": s} for s in services],
        )


@dataclass(frozen=True)
class IncidentColumns:
    """Every incident's facts as columns (index i is one incident, in no particular order) and
    its services as (incident index, service code) pairs. Never changed once built: a newer
    state is a new object, so a reader can go on using the one it has."""

    ids: list[str]
    index: dict[str, int]
    """Incident id to its index."""
    day: NDArray[np.int64]
    """UTC day it started, in days since 1970-01-01."""
    month: NDArray[np.int64]
    """UTC month it started, in months since 1970-01."""
    severity: NDArray[np.int64]
    """Its severity's code (`SEVERITY_CODES`)."""
    times: NDArray[np.float64]
    """Shape (3, n): seconds to detect, mitigate and resolve; NaN where the incident lacks it."""
    service_incident: NDArray[np.int64]
    """The incident index of each (incident, service) pair."""
    service_code: NDArray[np.int64]
    """The service of each pair, an index into `services`."""
    services: list[str]
    service_codes: dict[str, int]
    version: int | None
    """The last `incident_revisions` rowid these columns include (None: not kept)."""


def _day_column(conn: Connection) -> Any:
    if conn.dialect.name == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): its date as a day number, in SQL.
        day = func.julianday(func.substr(incident_facts.c.started_at, 1, 10)) - 2440587.5
        return cast(day, Integer)
    return incident_facts.c.started_at


def _fetch(conn: Connection, query: Any, ids: Sequence[str], key: Any) -> list[Any]:
    """The rows of `query` whose `key` is in `ids`, as the driver's tuples (these columns need
    no conversion)."""
    rows: list[Any] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = query.where(key.in_(ids[start : start + _CHUNK]))
        rows += conn.execute(chunk).cursor.fetchall()
    return rows


def _fact_query(conn: Connection) -> Any:
    f = incident_facts.c
    return select(f.incident_id, _day_column(conn), f.severity, f.ttd_s, f.ttm_s, f.ttr_s)


def _service_query() -> Any:
    return select(incident_services.c.incident_id, incident_services.c.service)


def _days(values: Sequence[Any]) -> NDArray[np.int64]:
    if values and not isinstance(values[0], int):  # timestamps, where SQL did not count days
        values = [(v.astimezone(UTC).date() - _EPOCH).days for v in values]
    return np.array(values, dtype=np.int64)


def _build(
    facts: list[Any], pairs: list[Any], version: int, base: IncidentColumns, replaced: Sequence[str]
) -> IncidentColumns:
    """The columns of `base` with the incidents in `replaced` read again: `facts` holds the
    rows of all of them (or they are gone), `pairs` their services."""
    columns = list(zip(*facts, strict=True)) or [()] * 6
    ids, index = list(base.ids), dict(base.index)
    services, codes = list(base.services), dict(base.service_codes)
    at = []
    for ident in columns[0]:
        position = index.get(ident)
        if position is None:
            position = index[ident] = len(ids)
            ids.append(ident)
        at.append(position)
    size, old = len(ids), len(base.ids)
    day, month, severity = (np.zeros(size, np.int64) for _ in range(3))
    times = np.full((3, size), np.nan)
    day[:old], month[:old] = base.day, base.month
    severity[:old], times[:, :old] = base.severity, base.times
    if facts:
        rows = np.array(at, dtype=np.int64)
        day[rows] = _days(columns[1])
        month[rows] = _months(day[rows])
        severity[rows] = [SEVERITY_CODES[s] for s in columns[2]]
        times[:, rows] = np.array(columns[3:], dtype=np.float64)  # None becomes NaN
    stale = np.array([index[i] for i in replaced if i in index], dtype=np.int64)
    kept = ~np.isin(base.service_incident, stale)
    owners, names = list(zip(*pairs, strict=True)) or [(), ()]
    for name in dict.fromkeys(names):
        if name not in codes:
            codes[name] = len(services)
            services.append(name)
    new_incident = [index[ident] for ident in owners]
    new_code = [codes[name] for name in names]
    return IncidentColumns(
        ids=ids,
        index=index,
        day=day,
        month=month,
        severity=severity,
        times=times,
        service_incident=np.concatenate(
            [base.service_incident[kept], np.array(new_incident, np.int64)]
        ),
        service_code=np.concatenate([base.service_code[kept], np.array(new_code, np.int64)]),
        services=services,
        service_codes=codes,
        version=version,
    )


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold the garbage collector's passes while hundreds of thousands of rows are read (they
    hold no cycles; the passes they would set off take as long as reading them)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _read_all(conn: Connection, version: int | None) -> IncidentColumns:
    """Every incident's columns, read `_BATCH` rows at a time: holding the rows of 100,000
    incidents at once took ~60 MB more than the columns, and a server process keeps the memory
    its heap once grew to."""
    ids: list[str] = []
    days: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
    severities: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
    times: list[NDArray[np.float64]] = [np.zeros((3, 0))]
    owners: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
    named: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
    services: list[str] = []
    codes: dict[str, int] = {}
    with collector_paused():
        for rows in _batches(conn, _fact_query(conn)):
            columns = list(zip(*rows, strict=True))
            ids += columns[0]
            days.append(_days(columns[1]))
            severities.append(np.array([SEVERITY_CODES[v] for v in columns[2]], np.int64))
            times.append(np.array(columns[3:], dtype=np.float64))  # None becomes NaN
        index = dict(zip(ids, range(len(ids)), strict=True))
        for rows in _batches(conn, _service_query()):
            # A pair of an incident written after its facts were read waits for the next read.
            pairs = [(index[i], name) for i, name in rows if i in index]
            for name in dict.fromkeys(name for _i, name in pairs):
                if name not in codes:
                    codes[name] = len(services)
                    services.append(name)
            owners.append(np.array([i for i, _name in pairs], np.int64))
            named.append(np.array([codes[name] for _i, name in pairs], np.int64))
    day = np.concatenate(days)
    return IncidentColumns(
        ids=ids,
        index=index,
        day=day,
        month=_months(day),
        severity=np.concatenate(severities),
        times=np.concatenate(times, axis=1),
        service_incident=np.concatenate(owners),
        service_code=np.concatenate(named),
        services=services,
        service_codes=codes,
        version=version,
    )


def _batches(conn: Connection, query: Any) -> Iterator[Sequence[Any]]:
    """The driver's rows of `query` (no conversion needed), `_BATCH` at a time."""
    cursor = conn.execute(query).cursor
    while rows := cursor.fetchmany(_BATCH):
        yield rows


def _months(day: NDArray[np.int64]) -> NDArray[np.int64]:
    """Months since 1970-01 of days since 1970-01-01."""
    months: NDArray[np.int64] = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return months


def _catch_up(conn: Connection, kept: IncidentColumns, seen: int, version: int) -> IncidentColumns:
    """`kept` (as of revision rowid `seen`) with the incidents written since read again."""
    changed = list(
        conn.execute(
            select(incident_revisions.c.incident_id)
            .where(literal_column("incident_revisions.rowid") > seen)
            .distinct()
        ).scalars()
    )
    if len(changed) > CATCH_UP_LIMIT:
        return _read_all(conn, version)
    facts = _fetch(conn, _fact_query(conn), changed, incident_facts.c.incident_id)
    if len(facts) < len(changed):  # an incident is gone: nothing to patch it with
        return _read_all(conn, version)
    pairs = _fetch(conn, _service_query(), changed, incident_services.c.incident_id)
    return _build(facts, pairs, version, kept, changed)


_kept: weakref.WeakKeyDictionary[Engine, IncidentColumns] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def incident_columns(engine: Engine) -> IncidentColumns:
    """Every incident's facts, as of now (see the module's docstring for how they are kept)."""
    if engine.dialect.name != "sqlite":
        return _counted_columns(engine)
    last: Any = literal_column("max(incident_revisions.rowid)")
    with _lock, read_transaction(engine) as conn:
        version = int(conn.execute(select(last).select_from(incident_revisions)).scalar() or 0)
        kept = _kept.get(engine)
        if kept is None or kept.version is None or kept.version > version:
            columns = _read_all(conn, version)
        elif kept.version != version:
            columns = _catch_up(conn, kept, kept.version, version)
        else:
            columns = kept
        count = conn.execute(select(func.count()).select_from(incident_facts)).scalar_one()
        if count != len(columns.ids):
            columns = _read_all(conn, version)
        _kept[engine] = columns
        return columns


def _counted_columns(engine: Engine) -> IncidentColumns:
    """The columns, versioned by the number of incident revisions (and facts)."""
    with _lock, read_transaction(engine) as conn:
        # Counted first: a later statement of this transaction may see more (committed since),
        # never less, so the columns hold at least what their version says.
        version = conn.execute(select(func.count()).select_from(incident_revisions)).scalar_one()
        count = conn.execute(select(func.count()).select_from(incident_facts)).scalar_one()
        kept = _kept.get(engine)
        if kept is None or kept.version != version or len(kept.ids) != count:
            kept = _kept[engine] = _read_all(conn, int(version))
        return kept


def forget_columns(engine: Engine) -> None:
    """Drop the columns kept for `engine` (the next read builds them afresh)."""
    with _lock:
        _kept.pop(engine, None)
