"""Search results kept for a search asked again (`RCA_RETRIEVAL__RESULT_CACHE`): a repeat is
answered without embedding or searching the indexes, and never once anything it depends on has
changed (the question, the store, the index's state) or the result was degraded."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from rca.config import RetrievalSettings, Settings
from rca.domain import Incident
from rca.domain.similar import SearchFilters
from rca.formats.importer import import_paths
from rca.ports import InputType
from rca.store import Store
from rca.testing import FakeEmbedder
from retrieval import search as search_module
from retrieval.remote_embedder import EmbedderUnavailable
from retrieval.service import Retrieval, open_retrieval

EXAMPLES = Path(__file__).parents[2] / "examples"
QUERY = "certificate expired"


class FlakyEmbedder(FakeEmbedder):
    """Unavailable while `down` is set, as the embedding service can be."""

    down = False

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        if self.down:
            raise EmbedderUnavailable("the embedding service is restarting")
        return super().embed(texts, input_type)


def _open(store: Store, settings: Settings, kept: int = 256) -> Retrieval:
    chosen = settings.model_copy(
        update={"retrieval": settings.retrieval.model_copy(update={"result_cache": kept})}
    )
    retrieval = open_retrieval(chosen, store, FlakyEmbedder())
    retrieval.indexer.sync()
    return retrieval


@pytest.fixture
def loaded(store: Store, settings: Settings) -> Iterator[Retrieval]:
    assert import_paths(store, [EXAMPLES / "postmortems"], 5 << 20).ok
    retrieval = _open(store, settings)
    yield retrieval
    retrieval.close()


def _queries(retrieval: Retrieval) -> int:
    """Query embeddings asked for so far."""
    embedder = retrieval.embedder
    assert isinstance(embedder, FakeEmbedder)
    return sum(1 for _count, kind in embedder.calls if kind == "query")


def test_a_repeated_search_is_answered_as_before_without_searching_again(
    loaded: Retrieval,
) -> None:
    first = loaded.search.search(QUERY, k=5)
    asked = _queries(loaded)
    assert first.hits and not first.degraded and asked == 1
    again = loaded.search.search(QUERY, k=5)
    assert again == first and _queries(loaded) == asked
    assert loaded.search.search(f"  {QUERY}\n", k=5) == first  # the same text, trimmed


def test_a_different_question_is_never_answered_from_another(loaded: Retrieval) -> None:
    base = loaded.search.search(QUERY, k=5)
    assert len(loaded.search.search(QUERY, k=2).hits) == 2
    assert loaded.search.search(QUERY, k=5, mode="lexical").mode == "lexical"
    filtered = loaded.search.search(QUERY, k=5, filters=SearchFilters(services=["checkout-api"]))
    assert all("checkout-api" in hit.services for hit in filtered.hits)
    assert filtered != base
    incident = Incident.model_validate_json(
        (EXAMPLES / "incidents" / "inc-2026-05-kafka-consumer-lag.json").read_text()
    )
    found = loaded.search.search(incident, k=5)
    elsewhere = incident.model_copy(update={"services": ["not-a-service-anywhere"]})
    moved = loaded.search.search(elsewhere, k=5)  # same text, other services: other reasons
    assert [h.postmortem_id for h in moved.hits] == [h.postmortem_id for h in found.hits]
    assert any("same services" in why for hit in found.hits for why in hit.why)
    assert not any("same services" in why for hit in moved.hits for why in hit.why)


def test_a_new_revision_is_searched_at_once(loaded: Retrieval, store: Store) -> None:
    before = loaded.search.search("zebra okapi", k=1)
    pm = store.get_postmortem("pm-2025-08-kafka-disk-full").postmortem
    store.save_postmortem(pm.model_copy(update={"summary": "Zebra and okapi."}), "test")
    waiting = loaded.search.search("zebra okapi", k=1)  # the store changed: searched again
    assert waiting != before and any("not in the vector index yet" in n for n in waiting.notes)
    assert waiting.hits[0].postmortem_id == "pm-2025-08-kafka-disk-full"
    loaded.indexer.sync()
    indexed = loaded.search.search("zebra okapi", k=1)
    assert not indexed.notes and indexed.hits[0].revision == 2


def test_a_degraded_result_is_not_kept(loaded: Retrieval) -> None:
    embedder = loaded.embedder
    assert isinstance(embedder, FlakyEmbedder)
    embedder.down = True
    degraded = loaded.search.search(QUERY, k=5)
    assert degraded.degraded and degraded.hits  # lexical still answers
    embedder.down = False
    recovered = loaded.search.search(QUERY, k=5)
    assert not recovered.degraded and recovered != degraded


def test_results_kept_are_bounded_in_number_and_age(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert import_paths(store, [EXAMPLES / "postmortems"], 5 << 20).ok
    none_kept = _open(store, settings, kept=0)
    two_kept = _open(store, settings, kept=2)
    try:
        none_kept.search.search(QUERY, k=5)
        none_kept.search.search(QUERY, k=5)
        assert _queries(none_kept) == 2
        for text in (QUERY, "disk full", "dns outage"):
            two_kept.search.search(text, k=5)
        two_kept.search.search("dns outage", k=5)
        assert _queries(two_kept) == 3  # still kept
        two_kept.search.search(QUERY, k=5)
        assert _queries(two_kept) == 4  # the oldest was dropped
        monkeypatch.setattr(search_module, "RESULT_TTL_S", 0.0)
        two_kept.search.search(QUERY, k=5)
        assert _queries(two_kept) == 5  # too old to answer
    finally:
        none_kept.close()
        two_kept.close()


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCA_RETRIEVAL__RESULT_CACHE", "0")
    assert Settings().retrieval.result_cache == 0
    with pytest.raises(ValueError, match="result_cache"):
        RetrievalSettings(result_cache=-1)
