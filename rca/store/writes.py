"""What every write of the system of record shares: what a save did (`Outcome`, `SaveResult`),
the clock rows are stamped with, a write transaction whose collisions and failures become
rca's errors, and an insert that waits for a concurrent one of the same key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError

from rca.errors import Conflict, StoreUnavailable
from rca.store.engine import write_transaction


class Outcome(StrEnum):
    """What a save did."""

    CREATED = "created"
    REVISED = "revised"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class SaveResult:
    """The result of saving one document."""

    kind: str
    id: str
    outcome: Outcome
    revision: int | None = None


def now() -> datetime:
    """The time rows are stamped with (UTC)."""
    return datetime.now(UTC)


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction whose collisions and failures become rca's errors."""
    try:
        with write_transaction(engine) as conn:
            yield conn
    except IntegrityError as err:
        raise Conflict(f"concurrent write collided, nothing saved: {err.orig}") from err
    except OperationalError as err:
        raise StoreUnavailable(f"database write failed, nothing saved: {err.orig}") from err


def insert_new(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same key exists; whether it was inserted. On
    PostgreSQL, where writers do not queue, a row of that key that a concurrent transaction
    inserted and has not committed yet makes this wait for it; once it committed, nothing is
    inserted and the caller's next read (`FOR UPDATE`) sees it, instead of colliding."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING rather than the row count, which psycopg does not report for this statement.
    key = next(iter(table.primary_key.columns))
    return conn.execute(statement.returning(key)).first() is not None
