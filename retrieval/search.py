"""Hybrid similar-incident search: BM25 and dense retrieval, fused by reciprocal rank.

Lexical search runs over the store's latest revisions (rebuilt in memory when the store
changes), so it is always current and works without the vector index; dense search reads the
vector index. When the vector index is unusable, search answers lexically and says so.

What a result shows is redacted, like the index: the query it echoes, and each hit's title,
services, snippets and reasons, taken from the postmortem with its secrets and personal data
replaced by placeholders. Ranking reads the text as it is.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from rca.config import Settings
from rca.domain import Incident, Postmortem
from rca.domain.similar import (
    MatchedSection,
    SearchFilters,
    SearchMode,
    SearchResult,
    SimilarHit,
    incident_query,
)
from rca.errors import IndexUnavailable, InvalidQuery
from rca.ports import Embedder
from rca.redaction import PlaceholderTable, Redactor, redact_postmortem
from rca.store import Store
from retrieval.chunking import full_text, section_texts
from retrieval.lexical import LexicalIndex, first_match, terms
from retrieval.vector_index import ChromaVectorIndex, VectorHit

SNIPPET_CHARS = 220
SNIPPET_SCAN_WORDS = 300
"""A snippet centres on a query term found among a section's first this many words."""
CHUNKS_PER_POSTMORTEM = 3
"""Dense search fetches this many chunks per postmortem it should propose."""
_PLACEHOLDER_TERM = re.compile(r"(?:secret|email|phone|card|ip)_\d+")
"""A redaction placeholder as `terms` leaves it (lowercased)."""


@dataclass(frozen=True)
class _Shown:
    """A postmortem as hits show it: redacted, its sections' text and their stemmed terms."""

    postmortem: Postmortem
    sections: dict[str, str]
    terms: dict[str, set[str]]


@dataclass
class _Corpus:
    """The store's latest revisions as search needs them, built once per store fingerprint."""

    fingerprint: str
    postmortems: dict[str, tuple[Postmortem, int]]
    sections: dict[str, dict[str, str]]
    lexical: LexicalIndex
    shown: dict[str, _Shown] = field(default_factory=dict)
    """Each postmortem as hits show it, made the first time it is a hit."""

    def shown_of(self, pm_id: str, redactor: Redactor) -> _Shown:
        """The redacted postmortem with its sections and their terms (cached: explaining hits
        would otherwise redact and stem them again on every search)."""
        found = self.shown.get(pm_id)
        if found is None:
            pm = redact_postmortem(self.postmortems[pm_id][0], redactor, PlaceholderTable())
            sections = section_texts(pm)
            found = _Shown(pm, sections, {name: set(terms(b)) for name, b in sections.items()})
            self.shown[pm_id] = found
        return found


@dataclass
class _Candidate:
    postmortem_id: str
    lexical_rank: int | None = None
    lexical_score: float = 0.0
    dense_rank: int | None = None
    dense_hits: list[VectorHit] = field(default_factory=list)
    score: float = 0.0


@dataclass
class Ranking:
    """Fused candidates, best first, and whether the dense side was missing."""

    corpus: _Corpus
    candidates: list[_Candidate]
    degraded: bool
    notes: list[str]

    def scored(self) -> list[tuple[str, float]]:
        """(postmortem id, fused score) pairs, best first."""
        return [(c.postmortem_id, c.score) for c in self.candidates]


def passes(pm: Postmortem, filters: SearchFilters) -> bool:
    """Whether a postmortem satisfies the filters (the lexical side's version of `where`)."""
    if filters.services and not set(filters.services) & set(pm.services):
        return False
    if filters.severities and pm.severity not in filters.severities:
        return False
    if filters.date_from and (pm.date is None or pm.date < filters.date_from):
        return False
    if filters.date_to and (pm.date is None or pm.date > filters.date_to):
        return False
    return set(filters.tags) <= set(pm.tags)


def snippet(text: str, query_terms: set[str]) -> str:
    """A short excerpt, centred on the first word that matches a query term."""
    words = text.split()
    found = first_match(words[:SNIPPET_SCAN_WORDS], query_terms)
    start = max(0, found - 8) if found is not None else 0
    excerpt = " ".join(words[start:])
    if len(excerpt) > SNIPPET_CHARS:
        excerpt = excerpt[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
    return ("… " if start else "") + excerpt


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
        self._corpus: _Corpus | None = None
        self._lock = threading.Lock()

    def corpus(self) -> _Corpus:
        """The in-memory lexical side, rebuilt when the store has changed."""
        fingerprint = self.store.fingerprint()
        with self._lock:
            if self._corpus is None or self._corpus.fingerprint != fingerprint:
                postmortems = {pm.id: (pm, rev) for pm, rev in self.store.latest_postmortems()}
                ids = list(postmortems)
                self._corpus = _Corpus(
                    fingerprint=fingerprint,
                    postmortems=postmortems,
                    sections={i: section_texts(postmortems[i][0]) for i in ids},
                    lexical=LexicalIndex(ids, [full_text(postmortems[i][0]) for i in ids]),
                )
            return self._corpus

    def search(
        self,
        query: str | Incident,
        k: int = 5,
        filters: SearchFilters | None = None,
        mode: SearchMode = "hybrid",
    ) -> SearchResult:
        """The `k` most similar postmortems, best first; what they show is redacted."""
        text = incident_query(query) if isinstance(query, Incident) else query.strip()
        ranking = self.rank(text, filters, mode, depth=k)
        shown = self.redactor.redact(text)
        query_terms = set(terms(shown))
        hits = [self._hit(c, ranking.corpus, query_terms, query) for c in ranking.candidates[:k]]
        return SearchResult(
            query=shown, mode=mode, hits=hits, degraded=ranking.degraded, notes=ranking.notes
        )

    def rank(
        self,
        text: str,
        filters: SearchFilters | None = None,
        mode: SearchMode = "hybrid",
        depth: int = 0,
    ) -> Ranking:
        """The candidates the retrievers propose, fused and ordered, without hit details.

        Each retriever proposes `max(depth, settings.retrieval.candidates)` postmortems. This is
        what `search` builds its hits from; benchmarks read it directly, since they need long
        rankings and no snippets. (Running BM25 beside the query embedding in another thread
        was measured slower: BM25 takes about a millisecond, the thread hand-off more.)
        """
        filters = filters or SearchFilters()
        if not terms(text):
            raise InvalidQuery("the query has no searchable words")
        corpus = self.corpus()
        depth = max(depth, self.settings.retrieval.candidates)
        candidates: dict[str, _Candidate] = {}
        if mode in ("hybrid", "lexical"):
            allowed = None
            if not filters.is_empty():
                allowed = {i for i, (pm, _) in corpus.postmortems.items() if passes(pm, filters)}
            for rank, (pm_id, score) in enumerate(
                corpus.lexical.search(text, depth, allowed), start=1
            ):
                candidates[pm_id] = _Candidate(pm_id, lexical_rank=rank, lexical_score=score)
        notes: list[str] = []
        degraded = False
        if mode in ("hybrid", "dense"):
            try:
                for rank, (pm_id, hits) in enumerate(
                    self._dense(text, filters, corpus, depth), start=1
                ):
                    candidate = candidates.setdefault(pm_id, _Candidate(pm_id))
                    candidate.dense_rank = rank
                    candidate.dense_hits = hits
                pending = self.store.index_state.pending_count()
                if pending:
                    notes.append(
                        f"{pending} postmortem revisions are not in the vector index yet "
                        "(run `rca index sync`)"
                    )
            except IndexUnavailable as err:
                if mode == "dense":
                    raise
                degraded = True
                notes.append(f"vector index unavailable, lexical results only: {err}")
                notes.append("run `rca index rebuild` to repair the vector index")
        for candidate in candidates.values():
            candidate.score = self._fused(candidate)
        ranked = sorted(candidates.values(), key=lambda c: (-c.score, c.postmortem_id))
        return Ranking(corpus=corpus, candidates=ranked, degraded=degraded, notes=notes)

    def _dense(
        self, text: str, filters: SearchFilters, corpus: _Corpus, depth: int
    ) -> list[tuple[str, list[VectorHit]]]:
        """Postmortems by their best chunk's similarity, each with its chunks best first."""
        if self.embedder is None or self.vectors is None:
            raise IndexUnavailable("no embedder or vector index configured")
        if not corpus.postmortems:
            return []  # nothing stored yet: no collection to ask, and nothing it could find
        vector = self.embedder.embed([text], "query")[0]
        # Chunks, not postmortems, come back: ask for a few per postmortem wanted.
        found = self.vectors.query(vector, depth * CHUNKS_PER_POSTMORTEM, filters)
        grouped: dict[str, list[VectorHit]] = defaultdict(list)
        for hit in found:  # best first, so each group is best first too
            if hit.section in corpus.sections.get(hit.postmortem_id, {}):
                grouped[hit.postmortem_id].append(hit)
            # else: orphaned, or a section the latest revision no longer has
        order = sorted(grouped, key=lambda i: -grouped[i][0].similarity)
        return [(pm_id, grouped[pm_id]) for pm_id in order[:depth]]

    def _fused(self, candidate: _Candidate) -> float:
        retrieval = self.settings.retrieval
        score = 0.0
        if candidate.lexical_rank is not None:
            score += retrieval.lexical_weight / (retrieval.rrf_k + candidate.lexical_rank)
        if candidate.dense_rank is not None:
            score += retrieval.dense_weight / (retrieval.rrf_k + candidate.dense_rank)
        return score

    def _hit(
        self,
        candidate: _Candidate,
        corpus: _Corpus,
        query_terms: set[str],
        query: str | Incident,
    ) -> SimilarHit:
        revision = corpus.postmortems[candidate.postmortem_id][1]
        shown = corpus.shown_of(candidate.postmortem_id, self.redactor)
        pm = shown.postmortem
        sections: list[MatchedSection] = []
        seen: set[str] = set()
        for hit in candidate.dense_hits[:3]:
            if hit.section in seen:
                continue
            seen.add(hit.section)
            sections.append(
                MatchedSection(
                    section=hit.section,
                    snippet=snippet(shown.sections.get(hit.section, ""), query_terms),
                    similarity=round(hit.similarity, 4),
                )
            )
        overlap_by_section = {name: query_terms & section for name, section in shown.terms.items()}
        shared = sorted(
            term  # numbers and placeholders match often and explain nothing
            for term in (set().union(*overlap_by_section.values()) if overlap_by_section else set())
            if not term.isdigit() and not _PLACEHOLDER_TERM.fullmatch(term)
        )
        best_lexical = max(overlap_by_section, key=lambda n: len(overlap_by_section[n]), default="")
        if best_lexical and overlap_by_section[best_lexical] and best_lexical not in seen:
            body = shown.sections[best_lexical]
            sections.append(
                MatchedSection(section=best_lexical, snippet=snippet(body, query_terms))
            )
        why: list[str] = []
        if candidate.lexical_rank is not None and shared:
            why.append(f"shares terms: {', '.join(shared[:8])}")
        if candidate.dense_hits:
            best = candidate.dense_hits[0]
            why.append(
                f"close in meaning to its {best.section.replace('_', ' ')}"
                f" (cosine {best.similarity:.2f})"
            )
        if isinstance(query, Incident):
            common = sorted(set(query.services) & set(pm.services))
            if common:
                why.append(f"same services: {', '.join(common)}")
            common_tags = sorted(set(query.tags) & set(pm.tags))
            if common_tags:
                why.append(f"same tags: {', '.join(common_tags)}")
        return SimilarHit(
            postmortem_id=pm.id,
            title=pm.title,
            score=round(candidate.score, 6),
            revision=revision,
            date=pm.date,
            severity=pm.severity,
            services=list(pm.services),
            sections=sections,
            why=why,
        )
