"""Hybrid similar-incident search: BM25 and dense retrieval, fused by reciprocal rank.

Lexical search reads the machine's tantivy index (`retrieval.lexical_shared`), caught up with
the store's latest revisions before each search that finds the store changed; dense search reads
the vector index. When the vector index is unusable, search answers lexically and says so.
Nothing holds every postmortem: a search loads its hits from the store by id, and keeps the
last few hundred redacted forms it showed. A search asked again while the store and the indexes
are as they were (same text or incident, k, filters, mode) is answered from the last results
kept (`RCA_RETRIEVAL__RESULT_CACHE`, for at most `RESULT_TTL_S`): what it found cannot have
changed, unless the index was deleted or damaged behind rca's back.

What a result shows is redacted, like the index: the query it echoes, and each hit's title,
services, snippets and reasons, taken from the postmortem with its secrets and personal data
replaced by placeholders. Ranking reads the text as it is.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rca.config import Settings
from rca.domain import Incident, Postmortem
from rca.domain.similar import (
    SearchFilters,
    SearchMode,
    SearchResult,
    incident_query,
)
from rca.errors import IndexUnavailable, InvalidQuery
from rca.ports import Embedder
from rca.redaction import Redactor
from rca.store import SearchSnapshot, Store
from retrieval.hits import Candidate, Shown, ShownCache, hit_of
from retrieval.lexical import terms
from retrieval.lexical_index import SCHEMA_VERSION, LexicalIndex
from retrieval.lexical_shared import SharedLexical
from retrieval.remote_embedder import EmbedderUnavailable
from retrieval.vector_index import ChromaVectorIndex, VectorHit

SHOWN_CACHE = 4096
"""How many redacted postmortems (the form hits show) a process keeps, least recently used
dropped first: with 256, searches of new texts over 10,000 postmortems redacted 4 of their
5 hits again (~1.5 ms each)."""
SHOWN_CACHE_CHARS = 8_000_000
"""And at most this many characters of them (~10-20 MB)."""
RESULT_TTL_S = 60.0
"""How long a kept search result answers at most: what the index's state in the store does not
show (an index deleted or damaged behind rca's back) is noticed within this much."""
CHUNKS_PER_POSTMORTEM = 3
"""Dense search fetches this many chunks per postmortem it should propose."""


@dataclass
class Ranking:
    """Fused candidates, best first, and whether the dense side was missing."""

    candidates: list[Candidate]
    degraded: bool
    notes: list[str]

    def scored(self) -> list[tuple[str, float]]:
        """(postmortem id, fused score) pairs, best first."""
        return [(c.postmortem_id, c.score) for c in self.candidates]


@dataclass(frozen=True)
class _Question:
    """One search's question."""

    query: str | Incident
    text: str
    """The text searched: the query trimmed, or the incident's query text."""
    k: int
    filters: SearchFilters | None
    mode: SearchMode

    @staticmethod
    def of(
        query: str | Incident, k: int, filters: SearchFilters | None, mode: SearchMode
    ) -> _Question:
        """The question a search asks (an incident asks its query text)."""
        text = incident_query(query) if isinstance(query, Incident) else query.strip()
        return _Question(query, text, k, filters, mode)

    def key(self, state: SearchSnapshot) -> tuple[object, ...]:
        """What the result depends on: the question (an incident's services and tags explain
        its hits too) and the state of the store and of the indexes a search reads."""
        asked: tuple[object, ...] = (self.text,)
        if isinstance(self.query, Incident):
            services, tags = sorted(self.query.services), sorted(self.query.tags)
            asked = (self.text, tuple(services), tuple(tags))
        filters = self.filters
        wanted = filters.model_dump_json() if filters is not None and not filters.is_empty() else ""
        return (*asked, self.k, wanted, self.mode, state.fingerprint, state.pending, state.value)


class SimilarSearch:
    """Finds past postmortems similar to an incident or a text."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder | None,
        vectors: ChromaVectorIndex | None,
        settings: Settings,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.vectors = vectors
        self.settings = settings
        self.redactor = Redactor(ip_addresses=settings.redaction.ip_addresses)
        self.lexical = SharedLexical(store, settings.data_dir / "lexical" / SCHEMA_VERSION)
        self._shown = ShownCache(SHOWN_CACHE, SHOWN_CACHE_CHARS)
        self._results: OrderedDict[tuple[object, ...], tuple[SearchResult, float]] = OrderedDict()
        self._shown_lock = threading.Lock()
        """Guards both caches."""

    def postmortems(self, ids: Sequence[str]) -> dict[str, Postmortem]:
        """The latest revisions of these postmortems (unredacted), by id; absent ones left out."""
        return {pm.id: pm for pm, _revision in self.store.latest_postmortems(ids)}

    def search(
        self,
        query: str | Incident,
        k: int = 5,
        filters: SearchFilters | None = None,
        mode: SearchMode = "hybrid",
        state: SearchSnapshot | None = None,
    ) -> SearchResult:
        """The `k` most similar postmortems, best first; what they show is redacted. `state`
        is the snapshot `kept` read, if it was asked first."""
        asked = _Question.of(query, k, filters, mode)
        state = state or self._snapshot()
        key = asked.key(state)
        found = self._kept(key)
        if found is not None:
            return found
        result = self._search(asked, state)
        if not result.degraded and self.settings.retrieval.result_cache:
            with self._shown_lock:  # a degraded result is not kept: the next search retries
                self._results[key] = (result, time.monotonic())
                self._results.move_to_end(key)
                while len(self._results) > self.settings.retrieval.result_cache:
                    self._results.popitem(last=False)
        return result

    def kept(
        self,
        query: str | Incident,
        k: int = 5,
        filters: SearchFilters | None = None,
        mode: SearchMode = "hybrid",
    ) -> tuple[SearchResult | None, SearchSnapshot]:
        """The result kept for this search, if the store and the indexes are as they were when
        it was found (None otherwise), and the snapshot of their state read to know: a short
        read, for the API to answer a repeated search without a slow thread of its own."""
        state = self._snapshot()
        return self._kept(_Question.of(query, k, filters, mode).key(state)), state

    def _kept(self, key: tuple[object, ...]) -> SearchResult | None:
        with self._shown_lock:
            kept = self._results.get(key)
            if kept is None or time.monotonic() - kept[1] >= RESULT_TTL_S:
                return None
            self._results.move_to_end(key)
            return kept[0]

    def _snapshot(self) -> SearchSnapshot:
        """The store's fingerprint, the outbox backlog and the active vector collection."""
        return self.store.index_state.snapshot(
            self.vectors.state_key if self.vectors is not None else ""
        )

    def _search(self, asked: _Question, state: SearchSnapshot) -> SearchResult:
        query, k, mode = asked.query, asked.k, asked.mode
        ranking = self.rank(asked.text, asked.filters, mode, depth=k, state=state)
        shown = self.redactor.redact(asked.text)
        query_terms = set(terms(shown))
        top = ranking.candidates[:k]
        forms = self._shown_forms(top)
        hits = [
            hit_of(c, forms[c.postmortem_id], query_terms, query)
            for c in top
            if c.postmortem_id in forms
        ]
        return SearchResult(
            query=shown, mode=mode, hits=hits, degraded=ranking.degraded, notes=ranking.notes
        )

    def rank(
        self,
        text: str,
        filters: SearchFilters | None = None,
        mode: SearchMode = "hybrid",
        depth: int = 0,
        state: SearchSnapshot | None = None,
    ) -> Ranking:
        """The candidates the retrievers propose, fused and ordered, without hit details.

        Each retriever proposes `max(depth, settings.retrieval.candidates)` postmortems. This is
        what `search` builds its hits from; benchmarks read it directly, since they need long
        rankings and no snippets. (Running BM25 beside the query embedding in another thread
        was measured slower: BM25 takes about a millisecond, the thread hand-off more.)
        """
        filters = filters or SearchFilters()
        query_terms = terms(text)
        if not query_terms:
            raise InvalidQuery("the query has no searchable words")
        state = state or self._snapshot()
        fingerprint = state.fingerprint
        lexical = self.lexical.current(fingerprint)
        depth = max(depth, self.settings.retrieval.candidates)
        candidates: dict[str, Candidate] = {}
        if mode in ("hybrid", "lexical"):
            found = lexical.search(query_terms, depth, None if filters.is_empty() else filters)
            for rank, hit in enumerate(found, start=1):
                candidates[hit.postmortem_id] = Candidate(
                    hit.postmortem_id, hit.revision, lexical_rank=rank, lexical_score=hit.score
                )
        notes: list[str] = []
        degraded = False
        if mode in ("hybrid", "dense"):
            try:
                dense = self._dense(text, filters, lexical, depth, state)
                for rank, (pm_id, revision, hits) in enumerate(dense, start=1):
                    candidate = candidates.setdefault(pm_id, Candidate(pm_id, revision))
                    candidate.dense_rank = rank
                    candidate.dense_hits = hits
                if state.pending:
                    notes.append(
                        f"{state.pending} postmortem revisions are not in the vector index yet "
                        "(run `rca index sync`)"
                    )
            except EmbedderUnavailable as err:
                if mode == "dense":
                    raise
                degraded = True  # the index is fine: nothing to rebuild
                notes.append(f"embedding service unavailable, lexical results only: {err}")
            except IndexUnavailable as err:
                if mode == "dense":
                    raise
                degraded = True
                notes.append(f"vector index unavailable, lexical results only: {err}")
                notes.append("run `rca index rebuild` to repair the vector index")
        for candidate in candidates.values():
            candidate.score = self._fused(candidate)
        ranked = sorted(candidates.values(), key=lambda c: (-c.score, c.postmortem_id))
        return Ranking(candidates=ranked, degraded=degraded, notes=notes)

    def _dense(
        self,
        text: str,
        filters: SearchFilters,
        lexical: LexicalIndex,
        depth: int,
        state: SearchSnapshot,
    ) -> list[tuple[str, int, list[VectorHit]]]:
        """Postmortems by their best chunk's similarity, each with its indexed revision and its
        chunks best first."""
        if self.embedder is None or self.vectors is None:
            raise IndexUnavailable("no embedder or vector index configured")
        if state.fingerprint == "0":
            return []  # nothing stored yet: no collection to ask, and nothing it could find
        vector = self.embedder.embed([text], "query")[0]
        # Chunks, not postmortems, come back: ask for a few per postmortem wanted.
        found = self.vectors.query(
            vector,
            depth * CHUNKS_PER_POSTMORTEM,
            filters,
            self.vectors.active_from(state.value),
        )
        latest = lexical.lookup({hit.postmortem_id for hit in found})
        grouped: dict[str, list[VectorHit]] = defaultdict(list)
        for hit in found:  # best first, so each group is best first too
            indexed = latest.get(hit.postmortem_id)
            if indexed is not None and hit.section in indexed.sections:
                grouped[hit.postmortem_id].append(hit)
            # else: orphaned, or a section the latest revision no longer has
        order = sorted(grouped, key=lambda i: -grouped[i][0].similarity)
        return [(i, latest[i].revision, grouped[i]) for i in order[:depth]]

    def _shown_forms(self, candidates: Sequence[Candidate]) -> dict[str, Shown]:
        """Each candidate's postmortem as hits show it: kept when the revision that was ranked
        is, else loaded from the store (its latest revision) and redacted."""
        forms: dict[str, Shown] = {}
        with self._shown_lock:
            for c in candidates:
                kept = self._shown.get(c.postmortem_id, c.revision)
                if kept is not None:
                    forms[c.postmortem_id] = kept
        missing = [c.postmortem_id for c in candidates if c.postmortem_id not in forms]
        for pm, revision in self.store.latest_postmortems(missing) if missing else ():
            forms[pm.id] = shown = Shown.of(pm, revision, self.redactor)
            with self._shown_lock:
                self._shown.put(shown)
        return forms

    def _fused(self, candidate: Candidate) -> float:
        retrieval = self.settings.retrieval
        score = 0.0
        if candidate.lexical_rank is not None:
            score += retrieval.lexical_weight / (retrieval.rrf_k + candidate.lexical_rank)
        if candidate.dense_rank is not None:
            score += retrieval.dense_weight / (retrieval.rrf_k + candidate.dense_rank)
        return score
