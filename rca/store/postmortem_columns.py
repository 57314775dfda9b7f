"""Postmortem facts read back for the insights as columns (`postmortem_columns`), kept in memory
per engine and read again only when a postmortem or its facts changed.

Whether they changed is one cheap query (`fact_version`): how many postmortems there are and the
sum of their latest revisions, and the same of the revisions their facts were found in. A
postmortem only ever gains revisions and its facts are found for one of them, so the two sums
are equal, with as many fact states as postmortems, exactly when every postmortem's facts are up
to date; and a new revision or newly found facts change one of the four numbers. (Facts found
again for the same revision are the same facts.)
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, func, select

from rca.domain import Severity
from rca.store.engine import postmortems, read_transaction
from rca.store.incident_facts import collector_paused
from rca.store.insight_tables import postmortem_fact_state, postmortem_facts

_EPOCH = date(1970, 1, 1)
SEVERITY_CODES = {s.value: code for code, s in enumerate(Severity)}
"""Severities as small integers, in `Severity`'s order (SEV1 is 0); -1 is none."""


@dataclass(frozen=True)
class FactVersion:
    """How many postmortems and fact states there are, and the sums of their revisions."""

    postmortems: int
    revisions: int
    found: int
    found_revisions: int

    @property
    def stale(self) -> bool:
        """Some postmortem's facts are missing or older than its latest revision."""
        return (self.postmortems, self.revisions) != (self.found, self.found_revisions)


def fact_version(conn: Connection) -> FactVersion:
    """The numbers that change whenever a postmortem or its facts do (one query)."""
    pm, state = postmortems.c, postmortem_fact_state.c
    parts = [
        select(func.count()).select_from(postmortems),
        select(func.coalesce(func.sum(pm.latest_revision), 0)),
        select(func.count()).select_from(postmortem_fact_state),
        select(func.coalesce(func.sum(state.revision), 0)),
    ]
    row = conn.execute(select(*(part.scalar_subquery() for part in parts))).one()
    return FactVersion(*(int(v) for v in row))


@dataclass(frozen=True)
class PostmortemColumns:
    """Every postmortem (index i is one, in no particular order) and its facts as (postmortem
    index, fact code) pairs. Never changed once built."""

    day: NDArray[np.int64]
    """Its date, in days since 1970-01-01 (0 when undated: see `dated`)."""
    dated: NDArray[np.bool_]
    severity: NDArray[np.int64]
    """Its severity's code (`SEVERITY_CODES`), -1 without one."""
    fact_postmortem: NDArray[np.int64]
    fact_code: NDArray[np.int64]
    """Each fact, an index into `facts`."""
    facts: list[tuple[str, str]]
    """(kind, value) of each fact code."""
    codes: dict[tuple[str, str], int]
    version: FactVersion


def _read(conn: Connection, version: FactVersion) -> PostmortemColumns:
    pm, f = postmortems.c, postmortem_facts.c
    with collector_paused():
        rows = conn.execute(select(pm.id, pm.date, pm.severity)).all()
        found = conn.execute(select(f.postmortem_id, f.kind, f.value)).cursor.fetchall()
        index = {row[0]: i for i, row in enumerate(rows)}
        codes = {pair: code for code, pair in enumerate(dict.fromkeys((r[1], r[2]) for r in found))}
        return PostmortemColumns(
            day=np.array([(r[1] - _EPOCH).days if r[1] else 0 for r in rows], dtype=np.int64),
            dated=np.array([r[1] is not None for r in rows], dtype=np.bool_),
            severity=np.array([SEVERITY_CODES.get(r[2], -1) for r in rows], dtype=np.int64),
            fact_postmortem=np.array([index[r[0]] for r in found], dtype=np.int64),
            fact_code=np.array([codes[(r[1], r[2])] for r in found], dtype=np.int64),
            facts=list(codes),
            codes=codes,
            version=version,
        )


_kept: weakref.WeakKeyDictionary[Engine, PostmortemColumns] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def postmortem_columns(engine: Engine) -> PostmortemColumns:
    """Every postmortem's date, severity and facts, as of now."""
    with _lock, read_transaction(engine) as conn:
        version = fact_version(conn)
        kept = _kept.get(engine)
        if kept is None or kept.version != version:
            kept = _kept[engine] = _read(conn, version)
        return kept


def forget_columns(engine: Engine) -> None:
    """Drop the columns kept for `engine` (the next read builds them afresh)."""
    with _lock:
        _kept.pop(engine, None)


def count_facts(
    columns: PostmortemColumns,
    kinds: Sequence[str],
    since: date,
    until: date,
    services: Sequence[str] = (),
    severities: Sequence[Severity] = (),
) -> tuple[dict[str, dict[str, int]], int, int]:
    """`postmortem_facts.fact_counts` over the columns: for each of `kinds`, how many
    postmortems dated from `since` up to (not including) `until` have each value; with how
    many postmortems that is, and how many are undated."""
    c = columns
    chosen = c.dated & (c.day >= (since - _EPOCH).days) & (c.day < (until - _EPOCH).days)
    if severities:
        chosen &= np.isin(c.severity, [SEVERITY_CODES[s.value] for s in severities])
    if services:
        wanted = [c.codes[("service", s)] for s in services if ("service", s) in c.codes]
        named = np.zeros(len(c.day), dtype=np.bool_)
        named[c.fact_postmortem[np.isin(c.fact_code, wanted)]] = True
        chosen &= named
    counted = np.bincount(c.fact_code[chosen[c.fact_postmortem]], minlength=len(c.facts))
    out: dict[str, dict[str, int]] = {kind: {} for kind in kinds}
    for code in np.flatnonzero(counted).tolist():
        kind, value = c.facts[code]
        if kind in out:
            out[kind][value] = int(counted[code])
    return out, int(chosen.sum()), int((~c.dated).sum())
