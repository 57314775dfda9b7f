"""Keeps the vector index in step with the system of record.

The store writes an outbox row with every new postmortem revision; `sync` drains it. `rebuild`
writes a new collection from the store and switches to it only when its count is right; `check`
compares store and index and repairs drift. The index holds nothing the store does not: deleting
it loses nothing.

All three run under the index writer's lease (`ChromaVectorIndex.writing`), renewed between
embedding slices and batches. Outbox rows are acknowledged only after their chunks are written,
and only while the lease is still held: a sync stopped by a Chroma server going away, or by a
lost lease, leaves the rest queued for the next one.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rca.config import Settings
from rca.domain import Postmortem
from rca.errors import IndexUnavailable
from rca.ports import Embedder
from rca.redaction import PlaceholderTable, Redactor, redact_postmortem
from rca.store import Store
from rca.store.index_lease import IndexLease
from retrieval.chunking import Chunk, chunk_postmortem, embedding_text
from retrieval.vector_index import ChromaVectorIndex

Progress = Callable[[int, int], None]
"""Called with (done, total) postmortems."""

EMBED_SLICE = 256
"""Texts embedded between two renewals of the writer's lease."""


@dataclass
class SyncReport:
    """What a sync did."""

    postmortems: int = 0
    chunks: int = 0
    rebuilt: bool = False


@dataclass
class CheckReport:
    """Drift between store and index."""

    collection: str
    expected_chunks: int
    indexed_chunks: int
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    repaired: bool = False
    rebuilt: bool = False

    @property
    def in_sync(self) -> bool:
        """True when the index holds exactly the store's latest revisions."""
        return not (self.missing or self.stale or self.orphans)


@dataclass(frozen=True)
class RebuildReport:
    """The result of a rebuild."""

    collection: str
    postmortems: int
    chunks: int
    moved_aside: str | None = None


class Indexer:
    """Writes postmortem chunks and their embeddings into the vector index."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        vectors: ChromaVectorIndex,
        settings: Settings,
        batch_postmortems: int = 256,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.vectors = vectors
        self.settings = settings
        self.batch_postmortems = batch_postmortems
        self.redactor = Redactor(ip_addresses=settings.redaction.ip_addresses)

    def chunks_of(self, pm: Postmortem, revision: int) -> list[Chunk]:
        """The chunks the index should hold for one revision, from the redacted postmortem:
        no secret or personal data is stored in the index (or sent to an embedding model)."""
        return chunk_postmortem(self.redacted(pm), revision, self.settings.retrieval.chunk_words)

    def redacted(self, pm: Postmortem) -> Postmortem:
        """The postmortem with secrets and personal data replaced (one placeholder table per
        postmortem); a redaction failure stops the write, nothing of the batch is stored."""
        return redact_postmortem(pm, self.redactor, PlaceholderTable())

    def _write(
        self,
        docs: Iterable[tuple[Postmortem, int]],
        name: str,
        lease: IndexLease,
        fresh: bool = False,
    ) -> tuple[int, int]:
        """Chunk, embed and upsert; old chunks of these postmortems that no longer exist go.
        The lease is renewed while embedding and before writing (IndexLocked if it was lost).

        `fresh` says the collection is being built from nothing, so there is nothing stale.
        """
        postmortems = list(docs)
        chunks: list[Chunk] = []
        texts: list[str] = []
        for pm, revision in postmortems:
            clean = self.redacted(pm)
            for chunk in chunk_postmortem(clean, revision, self.settings.retrieval.chunk_words):
                chunks.append(chunk)
                texts.append(embedding_text(clean.title, chunk))
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_SLICE):
            vectors += self.embedder.embed(texts[start : start + EMBED_SLICE], "document")
            lease.renew()
        self.vectors.upsert(chunks, vectors, name)
        if not fresh:
            keep = {c.id for c in chunks}
            touched = [pm.id for pm, _ in postmortems]
            stale = [cid for cid in self.vectors.chunk_ids_of(touched, name) if cid not in keep]
            self.vectors.delete_chunks(stale, name)
        return len(postmortems), len(chunks)

    def sync(self, progress: Progress | None = None) -> SyncReport:
        """Index every revision waiting in the outbox; rebuild if the collection is gone."""
        with self.vectors.writing() as lease:
            if not self._active_exists():
                built = self._rebuild_locked(progress, lease)
                return SyncReport(built.postmortems, built.chunks, rebuilt=True)
            report = SyncReport()
            outbox = self.store.index_state
            while entries := outbox.pending(limit=self.batch_postmortems):
                ids = sorted({e.postmortem_id for e in entries})
                docs = list(self.store.latest_postmortems(ids))
                done, chunks = self._write(docs, self.vectors.active_name(), lease)
                outbox.acknowledge(max(e.id for e in entries), ids, lease)
                report.postmortems += done
                report.chunks += chunks
                if progress:
                    progress(report.postmortems, report.postmortems + outbox.pending_count())
            return report

    def _active_exists(self) -> bool:
        """Whether the active collection exists; an unreadable embedded index counts as
        missing (a rebuild moves it aside), an unreachable Chroma server is IndexUnavailable."""
        try:
            return self.vectors.exists()
        except IndexUnavailable:
            if self.vectors.is_remote:
                raise
            return False

    def rebuild(self, progress: Progress | None = None) -> RebuildReport:
        """Build a new collection from the store, verify it, then switch to it."""
        with self.vectors.writing() as lease:
            return self._rebuild_locked(progress, lease)

    def _rebuild_locked(self, progress: Progress | None, lease: IndexLease) -> RebuildReport:
        moved = None
        try:
            self.vectors.exists()
        except IndexUnavailable:
            moved = self._move_aside()
        outbox = self.store.index_state
        seen = outbox.pending_ids()  # covered by the revisions read below
        name = self.vectors.next_name()
        if self.vectors.exists(name):
            self.vectors.drop(name)  # leftovers of an interrupted rebuild
        self.vectors.create(name)
        revisions = self.store.latest_revisions()
        total_pm = total_chunks = 0
        batch: list[tuple[Postmortem, int]] = []
        for doc in self.store.latest_postmortems(list(revisions)):
            batch.append(doc)
            if len(batch) >= self.batch_postmortems:
                done, chunks = self._write(batch, name, lease, fresh=True)
                total_pm, total_chunks = total_pm + done, total_chunks + chunks
                batch = []
                if progress:
                    progress(total_pm, len(revisions))
        if batch or not total_pm:
            done, chunks = self._write(batch, name, lease, fresh=True)
            total_pm, total_chunks = total_pm + done, total_chunks + chunks
            if progress:
                progress(total_pm, len(revisions))
        counted = self.vectors.count(name) if total_chunks else 0
        if counted != total_chunks:
            self.vectors.drop(name)
            raise IndexUnavailable(
                f"rebuild wrote {counted} chunks but expected {total_chunks}; kept the old index"
            )
        self.vectors.switch_to(name, lease)
        if seen:
            outbox.acknowledge_ids(seen, lease)
        return RebuildReport(name, total_pm, total_chunks, moved)

    def _move_aside(self) -> str:
        """Move an unreadable embedded index out of the way (it is derived data)."""
        if self.vectors.is_remote:
            raise IndexUnavailable("the Chroma server is unusable; cannot rebuild there")
        self.vectors.close()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        target = self.vectors.directory.with_name(f"chroma.broken-{stamp}")
        shutil.move(str(self.vectors.directory), str(target))
        return str(target)

    def check(self, repair: bool = True) -> CheckReport:
        """Compare the store's latest revisions with the index; repair drift when asked."""
        with self.vectors.writing() as lease:
            name = self.vectors.active_name()
            if not self._active_exists():
                expected = self.store.latest_revisions()
                report = CheckReport(name, 0, 0, missing=sorted(expected))
                if repair:
                    built = self._rebuild_locked(None, lease)
                    report.rebuilt = report.repaired = True
                    report.expected_chunks = report.indexed_chunks = built.chunks
                return report
            report = self._compare(name)
            if repair and not report.in_sync:
                to_index = sorted(set(report.missing) | set(report.stale))
                self._write(self.store.latest_postmortems(to_index), name, lease)
                indexed = self.vectors.chunk_revisions(name)
                orphan_chunks = [cid for cid, (pm, _) in indexed.items() if pm in report.orphans]
                self.vectors.delete_chunks(orphan_chunks, name)
                report.repaired = True
                report.indexed_chunks = self.vectors.count(name)
            return report

    def _compare(self, name: str) -> CheckReport:
        expected: dict[str, set[str]] = {}
        revisions: dict[str, int] = {}
        for pm, revision in self.store.latest_postmortems():
            expected[pm.id] = {c.id for c in self.chunks_of(pm, revision)}
            revisions[pm.id] = revision
        indexed = self.vectors.chunk_revisions(name)
        found: dict[str, set[str]] = defaultdict(set)
        found_revisions: dict[str, set[int]] = defaultdict(set)
        for chunk_id, (pm_id, revision) in indexed.items():
            found[pm_id].add(chunk_id)
            found_revisions[pm_id].add(revision)
        report = CheckReport(name, sum(len(ids) for ids in expected.values()), len(indexed))
        for pm_id, ids in sorted(expected.items()):
            if pm_id not in found:
                report.missing.append(pm_id)
            elif found[pm_id] != ids or found_revisions[pm_id] != {revisions[pm_id]}:
                report.stale.append(pm_id)
        report.orphans = sorted(set(found) - set(expected))
        return report
