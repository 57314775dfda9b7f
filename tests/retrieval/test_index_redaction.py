"""No secret or personal data is stored in the vector index or sent to the embedding model."""

from __future__ import annotations

from collections.abc import Sequence

from rca.config import Settings
from rca.domain import Postmortem
from rca.ports import InputType
from rca.store import Store
from rca.testing import FakeEmbedder
from retrieval.service import open_retrieval
from tests.support import CANARIES


class RecordingEmbedder(FakeEmbedder):
    """The fake embedder, keeping every text it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        self.texts.extend(texts)
        return super().embed(texts, input_type)


def test_no_canary_reaches_the_index_or_the_embedder(store: Store, settings: Settings) -> None:
    lines = [line for _name, line, _secret in CANARIES]
    pm = Postmortem.model_validate(
        {
            "id": "pm-leaky",
            "title": "Checkout outage; key AKIAZ3X7QW9PLM2NB4CD in the title",
            "summary": "Checkout failed. " + " ".join(lines[:10]),
            "root_causes": lines[10:20],
            "contributing_factors": [{"text": line, "category": "process"} for line in lines[20:]],
            "action_items": [
                {"text": "Rotate ops@larkspur.example credentials", "kind": "prevent"}
            ],
        }
    )
    store.save_postmortem(pm, "test")
    embedder = RecordingEmbedder()
    retrieval = open_retrieval(settings, store, embedder)
    try:
        retrieval.indexer.sync()
        collection = retrieval.vectors._collection(retrieval.vectors.active_name(), create=False)
        stored = collection.get(include=["documents", "metadatas"])
        documents = "\n".join(stored["documents"] or [])
        metadata = repr(stored["metadatas"])
        sent = "\n".join(embedder.texts)
        survivors = [
            name
            for name, _line, secret in CANARIES
            if secret in documents or secret in metadata or secret in sent
        ]
        assert survivors == []
        assert "ops@larkspur.example" not in documents + sent
        assert "SECRET_1" in documents and "EMAIL_1" in documents
        # The postmortem is still found by what it is about.
        hits = retrieval.search.search("checkout failed", k=1).hits
        assert hits and hits[0].postmortem_id == "pm-leaky"
    finally:
        retrieval.close()
