"""SQLite's writer queue: one writer at a time per database, across threads and processes.

PostgreSQL needs none (its writers run side by side under row locks), so `writer_lock` is a
no-op there.
"""

from __future__ import annotations

import fcntl
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import Engine


class _WriterLock:
    """One SQLite writer at a time, queued here rather than in SQLite.

    A writer that finds the database locked sleeps in growing steps (up to 100 ms) before it
    tries again, so under load some writers starve for seconds while others keep winning.
    Threads of one process queue on a lock; processes on the same database queue on an
    exclusive `flock` of `<database>.writer-lock` beside it. Both wait without polling.
    """

    def __init__(self, database: str | None) -> None:
        self.threads = threading.RLock()
        self.depth = 0  # re-entry by the holding thread takes the file lock once
        self.path = Path(database + ".writer-lock") if database and database != ":memory:" else None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self.threads:
            self.depth += 1
            try:
                if self.path is None or self.depth > 1:
                    yield
                else:
                    with self._file_locked():
                        yield
            finally:
                self.depth -= 1

    @contextmanager
    def _file_locked(self) -> Iterator[None]:
        assert self.path is not None
        with self.path.open("ab") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


_WRITERS: weakref.WeakKeyDictionary[Engine, _WriterLock] = weakref.WeakKeyDictionary()
_WRITERS_LOCK = threading.Lock()


def writer_lock(engine: Engine) -> AbstractContextManager[None]:
    """Held around a write transaction: the engine's database's writer lock (SQLite only)."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITERS_LOCK:
        lock = _WRITERS.get(engine)
        if lock is None:
            lock = _WRITERS[engine] = _WriterLock(engine.url.database)
    return lock.held()
