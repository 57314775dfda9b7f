"""The index outbox and index state: every saved postmortem revision is queued in the outbox (in
the transaction that saves it) until the indexer acknowledges it; the indexer keeps its own
small named values beside it (`IndexStateStore`). A writer holding the index lease
(`index_lease`) passes it to what it writes here, so a writer that lost it writes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, bindparam, delete, func, insert, select, update

from rca.store.counters import revisions_query
from rca.store.engine import (
    index_outbox,
    index_state,
    read_transaction,
    write_transaction,
)
from rca.store.index_lease import IndexLease
from rca.store.writes import now


@dataclass(frozen=True)
class OutboxEntry:
    """A revision waiting to be indexed."""

    id: int
    postmortem_id: str
    revision: int


@dataclass(frozen=True)
class SearchSnapshot:
    """What a search needs to know of the store before it reads the indexes, read at once."""

    fingerprint: str
    """`Store.fingerprint()`: changes with every new postmortem revision."""
    pending: int
    """Outbox entries waiting to be indexed."""
    value: str | None
    """The index-state value asked for (the active vector collection)."""


_SNAPSHOT = select(
    revisions_query().scalar_subquery(),
    select(func.count()).select_from(index_outbox).scalar_subquery(),
    select(index_state.c.value).where(index_state.c.name == bindparam("name")).scalar_subquery(),
)
"""`IndexStateStore.snapshot`'s statement (built once: building one per call costs more)."""


class IndexStateStore:
    """Outbox and index-state access for the indexer (part of the store, kept apart for clarity)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pending(self, limit: int = 500) -> list[OutboxEntry]:
        """The oldest outbox entries."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(index_outbox).order_by(index_outbox.c.id).limit(limit)).all()
        return [OutboxEntry(r.id, r.postmortem_id, r.revision) for r in rows]

    def pending_count(self) -> int:
        """How many outbox entries wait."""
        with read_transaction(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(index_outbox)).scalar_one())

    def lease(self, name: str, ttl: timedelta) -> IndexLease:
        """A new take of the named writer lease (not taken yet)."""
        return IndexLease(self.engine, name, ttl)

    def acknowledge(
        self,
        up_to_id: int,
        postmortem_ids: Sequence[str] | None = None,
        lease: IndexLease | None = None,
    ) -> int:
        """Delete handled entries (all up to an id, or only those of some postmortems), only
        while `lease` (if given) is still held."""
        statement = delete(index_outbox).where(index_outbox.c.id <= up_to_id)
        if postmortem_ids is not None:
            statement = statement.where(index_outbox.c.postmortem_id.in_(list(postmortem_ids)))
        with write_transaction(self.engine) as conn:
            if lease is not None:
                lease.confirm(conn)
            return conn.execute(statement).rowcount

    def pending_ids(self) -> list[int]:
        """The ids of every entry waiting now. A rebuild acknowledges these, not all up to the
        newest id: on PostgreSQL an entry with a smaller id may commit later than a bigger one,
        after the rebuild read the revisions, and must stay queued."""
        with read_transaction(self.engine) as conn:
            return list(
                conn.execute(select(index_outbox.c.id).order_by(index_outbox.c.id)).scalars()
            )

    def acknowledge_ids(self, ids: Sequence[int], lease: IndexLease | None = None) -> int:
        """Delete the entries with these ids, only while `lease` (if given) is still held."""
        done = 0
        with write_transaction(self.engine) as conn:
            if lease is not None:
                lease.confirm(conn)
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                done += conn.execute(
                    delete(index_outbox).where(index_outbox.c.id.in_(chunk))
                ).rowcount
        return done

    def snapshot(self, name: str) -> SearchSnapshot:
        """The store's fingerprint, the outbox backlog and one index-state value, in one
        statement (a search asks for all three: one round trip, and one snapshot on PostgreSQL
        too, where reads are statements of their own)."""
        with read_transaction(self.engine) as conn:
            total, pending, value = conn.execute(_SNAPSHOT, {"name": name}).one()
        return SearchSnapshot(str(total), int(pending), None if value is None else str(value))

    def get(self, name: str) -> str | None:
        """A stored index-state value."""
        with read_transaction(self.engine) as conn:
            value = conn.execute(
                select(index_state.c.value).where(index_state.c.name == name)
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def put(self, name: str, value: str, lease: IndexLease | None = None) -> None:
        """Set an index-state value, only while `lease` (if given) is still held."""
        with write_transaction(self.engine) as conn:
            if lease is not None:
                lease.confirm(conn)
            updated = conn.execute(
                update(index_state)
                .where(index_state.c.name == name)
                .values(value=value, updated_at=now())
            ).rowcount
            if not updated:
                conn.execute(insert(index_state).values(name=name, value=value, updated_at=now()))
