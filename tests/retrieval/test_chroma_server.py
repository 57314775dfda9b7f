"""A Chroma server as the vector index: a restart in the middle of a sync loses nothing, the
client reconnects by itself, and teams sharing a server each get a database of their own."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from rca.config import RetrievalSettings, Settings
from rca.errors import ConfigurationError, IndexUnavailable
from rca.formats.importer import import_paths
from rca.ports import InputType
from rca.store import Store
from rca.testing import FakeEmbedder
from retrieval.indexer import Indexer
from retrieval.service import open_retrieval
from retrieval.vector_index import WRITER_LEASE
from tests.chroma_server import ChromaServer, chroma_settings
from tests.support import run

EXAMPLES = Path(__file__).parents[2] / "examples"


class KillingEmbedder(FakeEmbedder):
    """The fake embedder, killing the Chroma server (SIGKILL) when asked for its
    `kill_on`th batch of documents: the batches before it are written, that one is not."""

    def __init__(self, server: ChromaServer, kill_on: int) -> None:
        super().__init__()
        self.server = server
        self.kill_on = kill_on
        self.batches = 0

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        if input_type == "document":
            self.batches += 1
            if self.batches == self.kill_on:
                self.server.kill()
        return super().embed(texts, input_type)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A Chroma server of the test's own, which it may kill and restart."""
    server = ChromaServer.start(tmp_path / "chroma-server")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imported(tmp_path: Path, own_server: ChromaServer) -> Iterator[tuple[Settings, Store]]:
    settings = Settings(
        data_dir=tmp_path / "data", retrieval=RetrievalSettings(chroma_url=own_server.url)
    )
    store = Store.open(settings)
    assert import_paths(store, [EXAMPLES / "postmortems"], 5 << 20).ok
    yield settings, store
    store.close()


def test_a_server_killed_mid_sync_loses_nothing_and_the_next_sync_resumes(
    imported: tuple[Settings, Store], own_server: ChromaServer
) -> None:
    settings, store = imported
    embedder = KillingEmbedder(own_server, kill_on=0)
    retrieval = open_retrieval(settings, store, embedder)
    indexer = Indexer(store, embedder, retrieval.vectors, settings, batch_postmortems=8)
    try:
        indexer.rebuild()  # the collection exists; the outbox is empty again
        total = len(store.latest_revisions())
        for pm, _revision in store.latest_postmortems():  # every postmortem gets a revision 2
            store.save_postmortem(pm.model_copy(update={"summary": pm.summary + " Again."}), "t")
        assert store.index_state.pending_count() == total
        embedder.batches, embedder.kill_on = 0, 2  # die while embedding the second batch

        with pytest.raises(IndexUnavailable, match="Connection refused"):
            indexer.sync()
        assert store.index_state.pending_count() == total - 8  # only the first batch went
        own_server.restart()

        report = indexer.sync()  # the same client: it reconnects by itself
        assert report.postmortems == total - 8
        assert store.index_state.pending_count() == 0
        check = indexer.check(repair=False)
        assert check.in_sync and check.indexed_chunks == check.expected_chunks
        revisions = retrieval.vectors.chunk_revisions()
        assert {rev for _pm, rev in revisions.values()} == {2}
        assert {pm for pm, _rev in revisions.values()} == set(store.latest_revisions())
        for pm, _revision in store.latest_postmortems():
            hits = retrieval.search.search(pm.title, k=5, mode="dense").hits
            assert pm.id in [h.postmortem_id for h in hits], pm.id
    finally:
        retrieval.close()


def test_a_server_down_at_the_start_of_a_sync_changes_nothing(
    imported: tuple[Settings, Store], own_server: ChromaServer
) -> None:
    settings, store = imported
    retrieval = open_retrieval(settings, store, FakeEmbedder())
    try:
        own_server.stop()
        with pytest.raises(IndexUnavailable, match="Could not connect to a Chroma server"):
            retrieval.indexer.sync()
        assert store.index_state.pending_count() == 31
        lease = store.index_state.lease(WRITER_LEASE, timedelta(seconds=60))
        lease.take()  # the failed sync let its lease go: nobody waits for it to expire
        lease.release()
        own_server.restart()
        assert retrieval.indexer.sync().postmortems == 31
        assert retrieval.indexer.check(repair=False).in_sync
    finally:
        retrieval.close()


def test_teams_sharing_a_server_get_a_database_each(
    tmp_path: Path, chroma_server: ChromaServer
) -> None:
    stores, indexes = [], []
    for team in ("a", "b"):
        settings = Settings(
            data_dir=tmp_path / team, retrieval=RetrievalSettings(**chroma_settings(chroma_server))
        )
        store = Store.open(settings)
        stores.append(store)
        indexes.append(open_retrieval(settings, store, FakeEmbedder()))
    try:
        assert import_paths(stores[0], [EXAMPLES / "postmortems"], 5 << 20).ok
        assert indexes[0].indexer.sync().postmortems == 31
        assert indexes[1].indexer.sync().postmortems == 0
        assert indexes[1].vectors.count() == 0  # same collection name, another database
        assert indexes[0].vectors.count() > 0
    finally:
        for retrieval in indexes:
            retrieval.close()
        for store in stores:
            store.close()


@pytest.mark.embedded_only
def test_a_database_without_a_server_is_refused(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", retrieval={"chroma_database": "team-a"})
    retrieval = open_retrieval(settings, store, FakeEmbedder())
    try:
        with pytest.raises(ConfigurationError, match="set RCA_RETRIEVAL__CHROMA_URL too"):
            retrieval.vectors.count()
    finally:
        retrieval.close()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CHROMA_DATABASE", "-team", "CHROMA_DATABASE: String should match pattern"),
        ("CHROMA_DATABASE", "ab", "CHROMA_DATABASE: String should match pattern"),
        ("INDEX_LEASE_S", "-1", "INDEX_LEASE_S: Input should be greater than or equal to 1"),
        ("INDEX_LEASE_S", "soon", "INDEX_LEASE_S: Input should be a valid number"),
    ],
)
def test_bad_index_settings_are_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(f"RCA_RETRIEVAL__{name}", value)
    code, out, err = run(tmp_path / "data", "index", "sync", capsys=capsys)
    assert code == 1 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_the_index_commands_on_a_server(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    chroma_server: ChromaServer,
) -> None:
    monkeypatch.setenv("RCA_RETRIEVAL__EMBEDDER", "fake")
    for name, value in chroma_settings(chroma_server).items():
        monkeypatch.setenv(f"RCA_RETRIEVAL__{name.upper()}", value)
    data = tmp_path / "data"
    code, out, err = run(data, "import", str(EXAMPLES), capsys=capsys)
    assert code == 0 and "indexed 31 postmortems" in out, err
    code, out, _ = run(data, "index", "check", capsys=capsys)
    assert code == 0 and "in sync" in out
    code, out, _ = run(data, "index", "rebuild", capsys=capsys)
    assert code == 0 and "31 postmortems" in out
    assert not (data / "chroma").exists()  # nothing embedded on disk
