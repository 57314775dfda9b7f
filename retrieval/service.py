"""Wiring: the embedder, vector index, indexer and search for one store and settings."""

from __future__ import annotations

from dataclasses import dataclass

from rca.config import Settings
from rca.ports import Embedder
from rca.store import Store
from retrieval.embedder import close_embedder, local_embedder
from retrieval.indexer import Indexer
from retrieval.remote_embedder import RemoteEmbedder
from retrieval.search import SimilarSearch
from retrieval.vector_index import ChromaVectorIndex


def make_embedder(settings: Settings) -> Embedder:
    """The configured embedder: in this process, or the embedding service's client."""
    retrieval = settings.retrieval
    if retrieval.embedder == "remote":
        assert retrieval.embedder_url is not None  # the settings refuse remote without a URL
        return RemoteEmbedder(
            retrieval.embedder_url,
            timeout_s=retrieval.embedder_timeout_s,
            batch_size=retrieval.batch_size,
        )
    return local_embedder(settings)


@dataclass
class Retrieval:
    """Everything similar-incident search needs, built once at the edge."""

    embedder: Embedder
    vectors: ChromaVectorIndex
    indexer: Indexer
    search: SimilarSearch

    def close(self) -> None:
        """Release the vector index client; stop the embedding thread (or close the
        connections to the embedding service)."""
        self.vectors.close()
        close_embedder(self.embedder)


def open_retrieval(settings: Settings, store: Store, embedder: Embedder | None = None) -> Retrieval:
    """Build the retrieval components; nothing is loaded until first used."""
    embedder = embedder or make_embedder(settings)
    vectors = ChromaVectorIndex(settings, embedder.model_id, embedder.dimension, store.index_state)
    return Retrieval(
        embedder=embedder,
        vectors=vectors,
        indexer=Indexer(store, embedder, vectors, settings),
        search=SimilarSearch(store, embedder, vectors, settings),
    )
