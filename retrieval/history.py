"""The `History` drafting asks for similar postmortems, backed by similar-incident search."""

from __future__ import annotations

from collections.abc import Container

from rca.errors import InvalidQuery
from rca.models import Incident
from rca.ports import Retrieved
from retrieval.search import SimilarSearch


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
        corpus = self.search.corpus()
        hits = [h for h in result.hits if h.postmortem_id not in self.exclude][:k]
        return Retrieved(
            postmortems=[corpus.postmortems[h.postmortem_id][0] for h in hits],
            scores=[h.score for h in hits],
            degraded=result.degraded,
            notes=list(result.notes),
        )
