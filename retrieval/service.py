"""Wiring: the embedder, vector index, indexer and search for one store and settings."""

from __future__ import annotations

from dataclasses import dataclass

from rca.config import Settings
from rca.ports import Embedder
from rca.store import Store
from rca.testing import FakeEmbedder
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.indexer import Indexer
from retrieval.search import SimilarSearch
from retrieval.vector_index import ChromaVectorIndex


def make_embedder(settings: Settings) -> Embedder:
    """The configured embedder."""
    retrieval = settings.retrieval
    if retrieval.embedder == "fake":
        return FakeEmbedder()
    return SentenceTransformerEmbedder(
        retrieval.model_dir, batch_size=retrieval.batch_size, int8=retrieval.int8
    )


@dataclass
class Retrieval:
    """Everything similar-incident search needs, built once at the edge."""

    embedder: Embedder
    vectors: ChromaVectorIndex
    indexer: Indexer
    search: SimilarSearch

    def close(self) -> None:
        """Release the vector index client and stop the embedding thread."""
        self.vectors.close()
        if isinstance(self.embedder, SentenceTransformerEmbedder):
            self.embedder.close()


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
