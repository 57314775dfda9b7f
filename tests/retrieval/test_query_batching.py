"""Queries that wait for the model together are encoded as one batch (no model loaded: the
embedder's encoding step is replaced by one that records what it was given)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from rca.ports import InputType
from retrieval.embedder import SentenceTransformerEmbedder


class Recording(SentenceTransformerEmbedder):
    """Encodes a text as [its length]; the first call waits until `release` is set."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__(batch_size=4)
        self.calls: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def _encode(self, texts: list[str], input_type: InputType) -> list[list[float]]:
        assert threading.current_thread().name.startswith("rca-embed")  # the model thread
        self.calls.append(list(texts))
        if len(self.calls) == 1:
            self.started.set()
            assert self.release.wait(10)
        if self.fail_on in texts:
            raise RuntimeError("the model failed")
        return [[float(len(text))] for text in texts]


def ask_while_busy(embedder: Recording, texts: list[str]) -> list[object]:
    """Occupy the model with a first query, ask `texts` from as many threads, let it go."""
    with ThreadPoolExecutor(len(texts) + 1) as pool:
        first = pool.submit(embedder.embed, ["first"], "query")
        assert embedder.started.wait(10)
        asked = [pool.submit(embedder.embed, [text], "query") for text in texts]
        while len(embedder._waiting) < len(set(texts)):
            threading.Event().wait(0.01)  # until every distinct text waits
        embedder.release.set()
        assert first.result(10) == [[5.0]]
        return [
            future.exception(10) if future.exception(10) else future.result(10) for future in asked
        ]


def test_queries_waiting_together_are_encoded_in_batches() -> None:
    embedder = Recording()
    texts = ["a", "bb", "ccc", "bb", "dddd", "eeeee", "ffffff"]
    answers = ask_while_busy(embedder, texts)
    assert answers == [[[float(len(t))]] for t in texts]
    # the same text once; batches of at most batch_size, in arrival order
    assert embedder.calls == [["first"], ["a", "bb", "ccc", "dddd"], ["eeeee", "ffffff"]]
    assert embedder.embed(["ccc"], "query") == [[3.0]]  # remembered: no new call
    assert len(embedder.calls) == 3
    embedder.close()


def test_a_failed_batch_fails_its_queries_only_and_the_next_one_runs() -> None:
    embedder = Recording(fail_on="bad")
    answers = ask_while_busy(embedder, ["x", "bad", "y", "z", "later"])
    failed = [a for a in answers if isinstance(a, RuntimeError)]
    assert len(failed) == 4 and answers[4] == [[5.0]]  # "later" came in the second batch
    assert embedder.embed(["x"], "query") == [[1.0]]  # not remembered as a failure
    embedder.close()


def test_documents_are_encoded_as_the_caller_batched_them() -> None:
    embedder = Recording()
    embedder.release.set()
    assert embedder.embed(["one", "three"], "document") == [[3.0], [5.0]]
    assert embedder.calls == [["one", "three"]]
    embedder.close()


def test_queries_are_encoded_with_their_own_thread_count_documents_with_the_default() -> None:
    import torch

    before = torch.get_num_threads()
    seen: list[tuple[str, int]] = []

    class Watching(SentenceTransformerEmbedder):
        def _use_threads(self, wanted: int) -> None:
            super()._use_threads(wanted)
            seen.append((threading.current_thread().name, torch.get_num_threads()))

    embedder = Watching(query_threads=1)
    try:
        query = embedder.embed(["disk full on the primary database"], "query")[0]
        document = embedder.embed(["the primary database ran out of disk"], "document")[0]
        again = embedder.embed(["disk full on the primary database, again"], "query")[0]
    finally:
        embedder.close()
        torch.set_num_threads(before)
    assert [threads for _name, threads in seen] == [1, before, 1]
    assert all(name.startswith("rca-embed") for name, _threads in seen)
    assert sum(a * b for a, b in zip(query, document, strict=True)) > 0.5  # still the model
    assert sum(a * b for a, b in zip(query, again, strict=True)) > 0.8
