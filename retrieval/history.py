"""Drafting wired to the store: similar postmortems through search, options from settings."""

from __future__ import annotations

from collections.abc import Container

from rca.config import Settings
from rca.domain import Incident
from rca.drafting import DraftingOptions
from rca.errors import InvalidQuery
from rca.llm import is_embedded
from rca.ports import Retrieved
from retrieval.search import SimilarSearch

RESERVED_TOKENS = 3_000
"""Context kept free of evidence: instructions, facts, findings, history, question, answer."""


class SearchHistory:
    """Similar postmortems from the store through hybrid search (lexical only, and marked
    degraded, when the vector index is unavailable). `exclude` keeps postmortems out (evals
    leave out the case's own reviewed postmortem)."""

    def __init__(self, search: SimilarSearch, exclude: Container[str] = ()) -> None:
        self.search = search
        self.exclude = exclude

    def similar(self, incident: Incident, k: int) -> Retrieved:
        """The `k` most similar postmortems, best first."""
        try:
            result = self.search.search(incident, k=k + 5)
        except InvalidQuery:
            return Retrieved([], notes=["the incident has no searchable words"])
        hits = [h for h in result.hits if h.postmortem_id not in self.exclude][:k]
        loaded = self.search.postmortems([h.postmortem_id for h in hits])
        hits = [h for h in hits if h.postmortem_id in loaded]
        return Retrieved(
            postmortems=[loaded[h.postmortem_id] for h in hits],
            scores=[h.score for h in hits],
            degraded=result.degraded,
            notes=list(result.notes),
        )


def drafting_options(settings: Settings, similar_k: int = 3) -> DraftingOptions:
    """Drafting options from the settings; the evidence budget leaves room in the embedded
    model's context for the rest of the prompt and the answer."""
    budget = settings.llm.evidence_tokens
    if is_embedded(settings.llm.model):
        budget = min(budget, max(200, settings.llm.context_tokens - RESERVED_TOKENS))
    own_words = settings.llm.own_words
    if own_words is None:
        own_words = not is_embedded(settings.llm.model)
    return DraftingOptions(
        similar_k=similar_k,
        evidence_tokens=budget,
        concurrency=settings.llm.concurrency,
        own_words=own_words,
    )
