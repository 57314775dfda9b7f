"""Counters the store keeps beside the rows they count, so reading one is one indexed row, not
an aggregate over a table: the number of postmortem revisions stored, which is the store's
fingerprint (every similar search reads it; summing 10,000 postmortems' revision numbers cost
about a millisecond of PostgreSQL's CPU a search).

On SQLite, also the drafts waiting in the queue, in all and per API key asking: triggers
(migration 0017) keep those, so a submission reads two rows instead of counting the queue
under the one write lock. PostgreSQL counts its queue itself (`rca.store.jobs`).

Declared on the same `metadata` as `rca.store.engine`'s tables (migration 0016 creates the
table and its row). A counter changes in the transaction that adds what it counts; the
integrity check (`rca check`) compares it with a count of the rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Select, String, Table, func, select, update

from rca.store.engine import metadata

store_counters = Table(
    "store_counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
"""One row per counter."""

REVISIONS = "postmortem_revisions"
"""Postmortem revisions stored (revisions are never changed or deleted, so it only grows)."""
QUEUED = "queued_drafts"
"""Drafts waiting (SQLite); `QUEUED:<key>` those one API key asked for, `QUEUED:` with none."""

_ADD_REVISION = (
    update(store_counters)
    .where(store_counters.c.name == REVISIONS)
    .values(value=store_counters.c.value + 1)
)


def count_revision(conn: Connection) -> None:
    """One more postmortem revision, inside the transaction that stores it."""
    if conn.execute(_ADD_REVISION).rowcount != 1:
        raise RuntimeError(
            "the store_counters table has no postmortem_revisions row: the database was not"
            " migrated by rca (run `rca check`, and report it)"
        )


def revisions_query() -> Select[Any]:
    """The statement reading the revision counter (0 before the first revision)."""
    stored = select(store_counters.c.value).where(store_counters.c.name == REVISIONS)
    return select(func.coalesce(stored.scalar_subquery(), 0))


def queued_drafts(conn: Connection, key: str | None) -> tuple[int, int]:
    """On SQLite, the drafts waiting, and how many of them `key` asked for (0 for None)."""
    names = [QUEUED] if key is None else [QUEUED, f"{QUEUED}:{key}"]
    rows = conn.execute(
        select(store_counters.c.name, store_counters.c.value).where(
            store_counters.c.name.in_(names)
        )
    )
    found = {str(name): int(value) for name, value in rows}
    if QUEUED not in found:
        raise RuntimeError(
            "the store_counters table has no queued_drafts row after a draft was queued: the"
            " database's triggers are missing (run `rca check`, and report it)"
        )
    return found[QUEUED], found.get(f"{QUEUED}:{key}", 0)
