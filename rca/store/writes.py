"""What every write of the system of record shares: what a save did (`Outcome`, `SaveResult`),
the clock rows are stamped with, and a write transaction whose collisions and failures become
rca's errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Connection, Engine
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
