"""The machine's lexical index: one tantivy directory under `data_dir/lexical/<schema version>`
(the root below), shared by every process of the machine and kept current with the store
incrementally.

    root/current          which generation is live ("g-" and 16 hex digits)
    root/g-…/             the live tantivy index
    root/g-….synced       the store fingerprint that generation reflects
    root/writer.lock      held by the one process writing
    root/broken-…/        an index that could not be read, moved aside

It is derived data: deleting the directory loses nothing (the next search rebuilds it). A
search first reads the store's fingerprint (one small query); when it changed, the process
reloads its reader if another process already caught up, else takes the writer lock and
re-indexes only the postmortems whose latest revision differs from the indexed one. A process
that finds the lock taken reloads what is committed and checks again at its next search.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rca.store import Store
from retrieval.lexical_index import LexicalIndex

_GENERATION = re.compile(r"g-[0-9a-f]{16}")


@dataclass(frozen=True)
class LexicalDrift:
    """How the lexical index differs from the store's latest revisions (postmortem ids)."""

    indexed: int
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        """Whether nothing differs."""
        return not (self.missing or self.stale or self.orphans)


@dataclass(frozen=True)
class LexicalSync:
    """What one catch-up or rebuild wrote."""

    written: int
    removed: int
    documents: int
    moved_aside: Path | None = None
    """Where an unreadable index was moved, if one was."""


class SharedLexical:
    """The lexical index of `root` (normally `data_dir/lexical/v1`), current with `store`."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root
        self._index: LexicalIndex | None = None
        self._generation = ""
        self._seen = ""
        """The store fingerprint this process's reader is known to reflect."""
        self._lock = threading.Lock()
        self.moved_aside: Path | None = None
        """Where this process last moved an unreadable index."""

    # --- reading ---------------------------------------------------------------------------

    def current(self, fingerprint: str | None = None) -> LexicalIndex:
        """The index, caught up with the store if this process can take the writer lock now
        (else as another process last committed it)."""
        fingerprint = self.store.fingerprint() if fingerprint is None else fingerprint
        with self._lock:
            index = self._index
            if index is not None and fingerprint == self._seen:
                return index
            try:
                return self._refresh(fingerprint)
            except (ValueError, OSError):  # a generation vanished or broke under us: reopen
                self._index = None
                return self._refresh(fingerprint)

    def _refresh(self, fingerprint: str) -> LexicalIndex:
        live = self._live_generation()
        if self._index is None or live != self._generation:
            if live is None or not self._open(live):
                with self._writer_lock(wait=True):
                    self._open_or_create()
        assert self._index is not None
        if self._synced(self._generation) == fingerprint:
            self._index.reload()
            self._seen = fingerprint
            return self._index
        with self._writer_lock(wait=False) as held:
            if not held:
                self._index.reload()  # someone else is writing: what they committed so far
                return self._index
            if self._live_generation() != self._generation:  # rebuilt meanwhile
                self._open_or_create()
            self._catch_up_locked(fingerprint)
        return self._index

    # --- maintenance (the `rca index` commands) --------------------------------------------

    def sync(self) -> LexicalSync:
        """Catch up with the store now, waiting for another writer if there is one."""
        with self._lock, self._writer_lock(wait=True):
            moved_before = self.moved_aside
            self._open_or_create()
            fingerprint = self.store.fingerprint()
            written, removed = self._catch_up_locked(fingerprint)
            assert self._index is not None
            moved = self.moved_aside if self.moved_aside != moved_before else None
            return LexicalSync(written, removed, len(self._index), moved)

    def rebuild(self) -> LexicalSync:
        """Index every latest revision into a new generation, then switch to it and delete the
        old one (processes still reading it switch at their next catch-up)."""
        with self._lock, self._writer_lock(wait=True):
            old = self._live_generation()
            fingerprint = self.store.fingerprint()
            generation = self._new_generation()
            index = LexicalIndex(self.root / generation)
            written = index.write(self.store.latest_postmortems())
            self._set_synced(generation, fingerprint)
            self._set_live(generation)
            self._index, self._generation, self._seen = index, generation, fingerprint
            if old is not None and old != generation:
                shutil.rmtree(self.root / old, ignore_errors=True)
                (self.root / f"{old}.synced").unlink(missing_ok=True)
            return LexicalSync(written, 0, len(index))

    def drift(self) -> LexicalDrift:
        """Compare the index with the store's latest revisions (reads both whole id lists)."""
        index = self.current()
        index.reload()
        indexed = index.revisions()
        latest = self.store.latest_revisions()
        return LexicalDrift(
            indexed=len(indexed),
            missing=sorted(set(latest) - set(indexed)),
            stale=sorted(i for i, r in latest.items() if i in indexed and indexed[i] != r),
            orphans=sorted(set(indexed) - set(latest)),
        )

    # --- internals (the writer lock is held where a name ends in _locked or says so) --------

    def _catch_up_locked(self, fingerprint: str) -> tuple[int, int]:
        """Re-index what differs from the store; `fingerprint` was read before the store's
        revisions, so recording it afterwards never claims more than was indexed."""
        index = self._index
        assert index is not None
        index.reload()
        indexed = index.revisions()
        latest = self.store.latest_revisions()
        changed = sorted(i for i, r in latest.items() if indexed.get(i) != r)
        gone = sorted(set(indexed) - set(latest))
        written = 0
        if changed or gone:
            written = index.write(self.store.latest_postmortems(changed), deleted=gone)
        self._set_synced(self._generation, fingerprint)
        self._seen = fingerprint
        return written, len(gone)

    def _open(self, generation: str) -> bool:
        """Open a generation for reading; False when it cannot be read."""
        try:
            index = LexicalIndex(self.root / generation)
        except (ValueError, OSError):
            return False
        self._index, self._generation, self._seen = index, generation, ""
        return True

    def _open_or_create(self) -> None:
        """With the writer lock: open the live generation, moving an unreadable one aside and
        starting a new, empty one (the catch-up that follows fills it)."""
        live = self._live_generation()
        if live is not None and self._open(live):
            return
        if live is not None and (self.root / live).exists():
            aside = self.root / f"broken-{live}-{int(time.time())}"
            (self.root / live).rename(aside)
            (self.root / f"{live}.synced").unlink(missing_ok=True)
            self.moved_aside = aside
        generation = self._new_generation()
        self._index = LexicalIndex(self.root / generation)
        self._set_live(generation)
        self._generation, self._seen = generation, ""

    def _new_generation(self) -> str:
        return f"g-{secrets.token_hex(8)}"

    def _live_generation(self) -> str | None:
        try:
            name = (self.root / "current").read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return name if _GENERATION.fullmatch(name) else None

    def _set_live(self, generation: str) -> None:
        _write_atomically(self.root / "current", generation)

    def _synced(self, generation: str) -> str | None:
        try:
            return (self.root / f"{generation}.synced").read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None

    def _set_synced(self, generation: str, fingerprint: str) -> None:
        _write_atomically(self.root / f"{generation}.synced", fingerprint)

    @contextmanager
    def _writer_lock(self, wait: bool) -> Iterator[bool]:
        """The machine-wide writer lock (yields False when `wait` is off and it is taken)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="ascii")
    os.replace(temporary, path)
