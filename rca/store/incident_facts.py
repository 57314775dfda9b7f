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


def _fetch(conn: Connection, query: Any, ids: Sequence[str] | None, key: Any) -> list[Any]:
    """The rows of `query` (of those whose `key` is in `ids`, unless None) as the driver's
    tuples: these columns need no conversion, and 100,000 rows a third of a second less."""
    if ids is None:
        return list(conn.execute(query).cursor.fetchall())
    rows: list[Any] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = query.where(key.in_(ids[start : start + _CHUNK]))
        rows += conn.execute(chunk).cursor.fetchall()
    return rows


def _fact_rows(conn: Connection, ids: Sequence[str] | None) -> list[Any]:
    f = incident_facts.c
    query = select(f.incident_id, _day_column(conn), f.severity, f.ttd_s, f.ttm_s, f.ttr_s)
    return _fetch(conn, query, ids, f.incident_id)


def _service_rows(conn: Connection, ids: Sequence[str] | None) -> list[Any]:
    s = incident_services.c
    return _fetch(conn, select(s.incident_id, s.service), ids, s.incident_id)


def _days(values: Sequence[Any]) -> NDArray[np.int64]:
    if values and not isinstance(values[0], int):  # timestamps, where SQL did not count days
        values = [(v.astimezone(UTC).date() - _EPOCH).days for v in values]
    return np.array(values, dtype=np.int64)


def _build(
    facts: list[Any],
    pairs: list[Any],
    version: int | None,
    base: IncidentColumns | None = None,
    replaced: Sequence[str] = (),
) -> IncidentColumns:
    """Columns from fact rows and service pairs; with `base`, those of `base` with the
    incidents in `replaced` (all of which `facts` holds, or that are gone) read again."""
    columns = list(zip(*facts, strict=True)) or [()] * 6
    if base is None:
        ids = list(columns[0])
        index = dict(zip(ids, range(len(ids)), strict=True))
        at = list(range(len(ids)))
        services: list[str] = []
        codes: dict[str, int] = {}
    else:
        ids, index = list(base.ids), dict(base.index)
        services, codes = list(base.services), dict(base.service_codes)
        at = []
        for ident in columns[0]:
            position = index.get(ident)
            if position is None:
                position = index[ident] = len(ids)
                ids.append(ident)
            at.append(position)
    size = len(ids)
    day, month, severity = (np.zeros(size, np.int64) for _ in range(3))
    times = np.full((3, size), np.nan)
    if base is not None:
        old = len(base.ids)
        day[:old], month[:old] = base.day, base.month
        severity[:old], times[:, :old] = base.severity, base.times
    if facts:
        rows = np.array(at, dtype=np.int64)
        day[rows] = _days(columns[1])
        month[rows] = day[rows].astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        severity[rows] = [SEVERITY_CODES[s] for s in columns[2]]
        times[:, rows] = np.array(columns[3:], dtype=np.float64)  # None becomes NaN
    keep_incident = base.service_incident if base else np.zeros(0, np.int64)
    keep_code = base.service_code if base else np.zeros(0, np.int64)
    if replaced:
        stale = np.array([index[i] for i in replaced if i in index], dtype=np.int64)
        kept = ~np.isin(keep_incident, stale)
        keep_incident, keep_code = keep_incident[kept], keep_code[kept]
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
        service_incident=np.concatenate([keep_incident, np.array(new_incident, np.int64)]),
        service_code=np.concatenate([keep_code, np.array(new_code, np.int64)]),
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
    with collector_paused():
        return _build(_fact_rows(conn, None), _service_rows(conn, None), version)


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
    facts = _fact_rows(conn, changed)
    if len(facts) < len(changed):  # an incident is gone: nothing to patch it with
        return _read_all(conn, version)
    return _build(facts, _service_rows(conn, changed), version, kept, changed)


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
