"""The index writer's lease: one process at a time, on any machine, writes the vector index.

A lease is a named row in `index_leases` holding who has it (`host:pid:random:pid-namespace`,
new for every take, so two threads of one process exclude each other too) and until when.
Taking it is one atomic statement that succeeds only when the row is absent, released or
expired; on PostgreSQL a second taker waits for the first one's row lock and then sees the row
taken. A writer renews it as it works; one that stops renewing (killed, hung) loses it once it
expires, and another process takes over. A holder that died on the same machine (same host
name and PID namespace, and no process has its PID any more) is taken over at once; a PID that
another process took since only means waiting for the expiry. Its writes to the store
(acknowledged outbox rows, the active collection) happen in the transaction that renews it
(`confirm`), so a writer that lost its lease changes nothing more.

Times come from the database's clock on PostgreSQL (`clock_timestamp()`), so machines whose
clocks disagree still agree on when a lease expires; SQLite is one machine's file, and its
clock is that machine's.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, Connection, Engine, String, Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from rca.errors import IndexLocked
from rca.store.engine import (
    UTCDateTime,
    metadata,
    read_transaction,
    write_transaction,
)

index_leases = Table(
    "index_leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("taken_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
"""Named leases of index writers (one row per name): who holds it (`new_holder`), since when,
and until when unless renewed; a released lease expires at its release. (Declared here, beside
its only user, as the other stores' tables are: engine.py is at its size limit.)"""


@dataclass(frozen=True)
class LeaseState:
    """A lease row as read: who holds (or last held) it and until when."""

    name: str
    holder: str
    taken_at: datetime
    expires_at: datetime


def _pid_namespace() -> str:
    """This process's PID namespace (Linux: the inode of /proc/self/ns/pid); "" if unknown.
    Two containers may share a host name; their PIDs mean the same only in one namespace."""
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return ""


def new_holder() -> str:
    """`host:pid:random:pid-namespace`: says which process holds a lease, and tells apart two
    takes in it."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}:{_pid_namespace()}"


def died_here(holder: str) -> bool:
    """Whether `holder` was a process of this machine (and PID namespace) that is gone."""
    parts = holder.split(":")
    if len(parts) != 4 or not parts[3] or not parts[1].isdigit():
        return False  # another format, or a namespace unknown: wait for the expiry
    host, pid, _take, namespace = parts
    if host != socket.gethostname() or namespace != _pid_namespace():
        return False
    if int(pid) == os.getpid():
        return False  # another take of this very process (a thread): alive
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def database_now(conn: Connection) -> datetime:
    """The time by the database's clock (PostgreSQL) or this machine's (SQLite)."""
    if conn.dialect.name == "postgresql":
        found: datetime = conn.execute(select(func.clock_timestamp())).scalar_one()
        return found.astimezone(UTC)
    return datetime.now(UTC)


class IndexLease:
    """One take of a named lease by one holder, for `ttl` at a time."""

    def __init__(self, engine: Engine, name: str, ttl: timedelta) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"a lease lasts a positive time, not {ttl.total_seconds()} s")
        self.engine = engine
        self.name = name
        self.ttl = ttl
        self.holder = new_holder()

    def take(self) -> None:
        """Take the lease if it is free, released or expired; IndexLocked (saying who holds
        it and until when) at once if not."""
        with write_transaction(self.engine) as conn:
            now = database_now(conn)
            values = {"holder": self.holder, "taken_at": now, "expires_at": now + self.ttl}
            maker = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            inserted = conn.execute(
                maker(index_leases)
                .values(name=self.name, **values)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(index_leases.c.name)  # the rowcount of a skipped insert is not 0
            ).first()
            if inserted is not None:
                return
            taken = conn.execute(
                update(index_leases)
                .where(index_leases.c.name == self.name, index_leases.c.expires_at <= now)
                .values(**values)
            ).rowcount
            if taken:
                return
            current = _read(conn, self.name)
            if current is not None and died_here(current.holder):
                taken = conn.execute(  # only from that holder: two takers cannot both win
                    update(index_leases)
                    .where(
                        index_leases.c.name == self.name,
                        index_leases.c.holder == current.holder,
                    )
                    .values(**values)
                ).rowcount
                if taken:
                    return
        raise IndexLocked(_held_elsewhere(current, self.ttl))

    def renew(self) -> None:
        """Extend the lease by its ttl from now; IndexLocked if it was lost meanwhile."""
        with write_transaction(self.engine) as conn:
            self.confirm(conn)

    def confirm(self, conn: Connection) -> None:
        """Renew the lease inside the caller's write transaction, so whatever the transaction
        writes commits only while the lease is held; IndexLocked (rolling it back) if lost."""
        now = database_now(conn)
        renewed = conn.execute(
            update(index_leases)
            .where(index_leases.c.name == self.name, index_leases.c.holder == self.holder)
            .values(expires_at=now + self.ttl)
        ).rowcount
        if not renewed:
            current = _read(conn, self.name)
            taker = f" to {current.holder}" if current else ""
            raise IndexLocked(
                f"this process lost the index writer lease {self.name!r}{taker}: it did not renew"
                f" it within {self.ttl.total_seconds():g} s (RCA_RETRIEVAL__INDEX_LEASE_S), so"
                " another writer took over; it stopped before acknowledging what it had not"
                " finished (that stays queued). Run the sync again if it is still needed."
            )

    def release(self) -> None:
        """Let the lease go (it expires now); nothing if it was lost already."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(index_leases)
                .where(index_leases.c.name == self.name, index_leases.c.holder == self.holder)
                .values(expires_at=database_now(conn))
            )

    def state(self) -> LeaseState | None:
        """The lease row, if the lease was ever taken."""
        with read_transaction(self.engine) as conn:
            return _read(conn, self.name)

    @contextmanager
    def held(self) -> Iterator[IndexLease]:
        """Take the lease, yield it, release it. When the body failed, a failure to release
        (the database went away too) is not raised over the body's error: the lease then
        expires after its ttl."""
        self.take()
        try:
            yield self
        except BaseException:
            try:
                self.release()
            except SQLAlchemyError:
                pass
            raise
        self.release()


def _read(conn: Connection, name: str) -> LeaseState | None:
    row = conn.execute(select(index_leases).where(index_leases.c.name == name)).one_or_none()
    if row is None:
        return None
    return LeaseState(row.name, row.holder, row.taken_at, row.expires_at)


def _held_elsewhere(current: LeaseState | None, ttl: timedelta) -> str:
    if current is None:  # released and gone between the two statements: rare, say so
        return "another writer was taking the vector index writer lease; try again"
    until = current.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"another process ({current.holder}, since"
        f" {current.taken_at.strftime('%Y-%m-%dT%H:%M:%SZ')}) is writing the vector index:"
        f" it holds the writer lease {current.name!r} until {until}, renewing it as it works;"
        " wait for it to finish. If that process is gone (on another machine, or in another"
        " container), the lease expires then and the next"
        f" writer takes over (this process would hold it {ttl.total_seconds():g} s at a time,"
        " RCA_RETRIEVAL__INDEX_LEASE_S)"
    )
