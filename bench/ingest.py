"""Ingest throughput: rca's batched indexer against one-document-at-a-time encoding.

    .venv/bin/python bench/ingest.py --corpus ../shared/data/public-postmortems/corpus.jsonl

Both sides run the same code path (store outbox -> chunking -> embedding -> chroma upsert) into
fresh temporary data directories, alternating, `--repeats` times; the numbers are medians. The
baseline differs only in batching: it indexes one postmortem per round trip and encodes one
chunk per model call, as a naive loop would. `--int8` adds a row for int8 document encoding
(`RCA_RETRIEVAL__INT8=all`). Time spent inside the encoder is measured
separately, to show what bounds the throughput.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import median, peak_rss_mib, scratch_settings
from evals.public_benchmark import load_corpus
from evals.retrieval_eval import doc_to_postmortem
from rca.domain import Postmortem
from rca.ports import Embedder, InputType
from rca.store import Store
from retrieval.indexer import Indexer
from retrieval.service import make_embedder
from retrieval.vector_index import ChromaVectorIndex


class TimedEmbedder:
    """Wraps an embedder, adding up the seconds spent encoding; optionally one text per call."""

    def __init__(self, inner: Embedder, one_at_a_time: bool) -> None:
        self.inner = inner
        self.one_at_a_time = one_at_a_time
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.seconds = 0.0

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        started = time.perf_counter()
        if self.one_at_a_time:
            vectors = [self.inner.embed([text], input_type)[0] for text in texts]
        else:
            vectors = self.inner.embed(texts, input_type)
        self.seconds += time.perf_counter() - started
        return vectors


def index_once(
    postmortems: list[Postmortem], embedder: Embedder, naive: bool
) -> tuple[float, float, int]:
    """(seconds indexing, seconds encoding, chunks) for one fresh store and index."""
    with tempfile.TemporaryDirectory(prefix="rca-bench-ingest-") as tmp:
        settings = scratch_settings(Path(tmp))
        store = Store.open(settings)
        store.save(postmortems, source="bench")
        timed = TimedEmbedder(embedder, one_at_a_time=naive)
        vectors = ChromaVectorIndex(settings, timed.model_id, timed.dimension, store.index_state)
        indexer = Indexer(store, timed, vectors, settings, batch_postmortems=1 if naive else 256)
        try:
            vectors.create(vectors.active_name())  # so that sync drains the outbox, not rebuilds
            started = time.perf_counter()
            report = indexer.sync()
            elapsed = time.perf_counter() - started
        finally:
            vectors.close()
            store.close()
    return elapsed, timed.seconds, report.chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="corpus.jsonl")
    parser.add_argument("--limit", type=int, default=200, help="postmortems per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--int8", action="store_true", help="also index with RCA_RETRIEVAL__INT8=all"
    )
    args = parser.parse_args()
    docs = load_corpus(args.corpus)[: args.limit]
    postmortems = [doc_to_postmortem(doc, str(args.corpus)) for doc in docs]
    settings = scratch_settings(Path(tempfile.gettempdir()))
    embedders = {"baseline": make_embedder(settings), "rca": make_embedder(settings)}
    if args.int8:
        int8 = settings.retrieval.model_copy(update={"int8": "all"})
        embedders["rca int8"] = make_embedder(settings.model_copy(update={"retrieval": int8}))
    for embedder in embedders.values():
        embedder.embed(["warm up the model"], "document")
    rows: dict[str, list[tuple[float, float, int]]] = {name: [] for name in embedders}
    for repeat in range(args.repeats):
        for name, embedder in embedders.items():
            result = index_once(postmortems, embedder, naive=name == "baseline")
            rows[name].append(result)
            print(
                f"  run {repeat + 1} {name:8s} {result[0]:7.1f} s "
                f"(encoder {result[1]:6.1f} s, {result[2]} chunks)",
                file=sys.stderr,
            )
    print(f"ingest: {len(postmortems)} postmortems, {args.repeats} runs each, medians")
    print(f"{'':10s} {'seconds':>8s} {'pm/s':>7s} {'chunks/s':>9s} {'encoder share':>14s}")
    throughput: dict[str, float] = {}
    for name, results in rows.items():
        seconds = median([r[0] for r in results])
        share = median([r[1] / r[0] for r in results])
        chunks = results[0][2]
        throughput[name] = chunks / seconds
        print(
            f"{name:10s} {seconds:8.1f} {len(postmortems) / seconds:7.2f} "
            f"{chunks / seconds:9.1f} {share:13.0%}"
        )
    for name in throughput:
        if name != "baseline":
            ratio = throughput[name] / throughput["baseline"]
            print(f"{name}: {ratio:.2f}x the baseline's chunks/s")
    print(f"peak RSS of this process (model, store, index): {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
