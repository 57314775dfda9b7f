"""Similar-incident search latency and memory on a 10,000-postmortem synthetic corpus.

    .venv/bin/python bench/search.py [--postmortems 10000] [--queries 400] [--repeats 3]
        [--data-dir DIR] [--lexical-only]

The corpus is generated from the project's own example postmortems (ids, services, numbers and
sentences recombined), stored in a temporary SQLite store and indexed into embedded chroma.
Embedding 60,000 chunks with MiniLM would take most of an hour on 2 cores, so document vectors
come from the deterministic bag-of-words `FakeEmbedder` at MiniLM's dimension (384): search
cost depends on the number and size of vectors, not on which model made them. Queries are
embedded by the real model.

The embedder remembers the vectors of recent queries (the same incident's similar search is
asked for again and again), so a search is timed twice: **cold**, with a text no search has
used before (each cold row appends its own marker to the query, so it pays a real query
embedding), and **repeated**, the same text searched again (its vector cached; whole results
are not kept here, `RCA_RETRIEVAL__RESULT_CACHE=0`, so it still searches). Lexical search
embeds nothing and has one row.

Building and searching run in separate processes so that each reports its own peak RSS. Each
query is timed once per row after a warm-up; latencies are percentiles over queries. The
baseline is the cold query embedding alone -- the part of a cold search no index can avoid --
timed in the same run.

The lexical rows (bench/_search_lexical.py, on a copy of the store) compare the old per-process
bm25s rebuild -- the baseline of those rows, measured in the same run -- with tantivy built in
memory in each process and tantivy persisted under data_dir/lexical and caught up
incrementally: full build, update after one changed postmortem, open, query latency, and the
peak RSS of a process that answers lexical searches each way. "Import searchable" is the time
from a new postmortem's commit to the first search of another, already running, process that
finds it. Times of builds and updates are medians over `--repeats` runs.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import peak_rss_mib, percentile, scratch_settings
from bench._search_lexical import copy_store, lexical_phase, rss_phase, searchable_phase
from rca.domain import Incident, Postmortem
from rca.domain.similar import SearchMode, incident_query
from rca.formats.importer import load_file
from rca.ports import Embedder, InputType
from rca.store import Store
from rca.testing import FakeEmbedder
from retrieval.indexer import Indexer
from retrieval.search import SimilarSearch
from retrieval.service import make_embedder
from retrieval.vector_index import ChromaVectorIndex

ROOT = Path(__file__).resolve().parent.parent
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_NUMBER = re.compile(r"\b\d+\b")


class SyntheticDocsEmbedder:
    """Documents: hashed bag-of-words at the model's dimension. Queries: the real model."""

    def __init__(self, real: Embedder) -> None:
        self.real = real
        self.model_id = real.model_id
        self.dimension = real.dimension
        self.fake = FakeEmbedder(dimension=self.dimension, model_id=self.model_id)

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        if input_type == "query":
            return self.real.embed(texts, input_type)
        return self.fake.embed(texts, input_type)


def examples() -> tuple[list[Postmortem], list[Incident]]:
    """The project's example postmortems and incidents."""
    postmortems: list[Postmortem] = []
    incidents: list[Incident] = []
    for path in sorted((ROOT / "examples").rglob("*")):
        if path.suffix not in (".md", ".json"):
            continue
        for document in load_file(path, max_bytes=10_000_000):
            if isinstance(document, Postmortem):
                postmortems.append(document)
            elif isinstance(document, Incident):
                incidents.append(document)
    return postmortems, incidents


def synthetic_corpus(size: int, seed: int = 7) -> list[Postmortem]:
    """`size` postmortems recombined from the examples: new ids, services, numbers, sentences."""
    rng = random.Random(seed)
    bases, _ = examples()
    sentences = [s for pm in bases for s in _SENTENCE.split(pm.summary) if len(s.split()) > 5]
    services = [
        f"{a}-{b}" for a in ("svc", "api", "db", "edge", "queue", "auth") for b in range(40)
    ]
    hosts = [f"node-{n:04d}" for n in range(2000)]
    corpus = []
    for n in range(size):
        base = bases[n % len(bases)]

        def vary(text: str) -> str:
            return _NUMBER.sub(lambda _m: str(rng.randint(1, 9999)), text)

        extra = " ".join(rng.sample(sentences, 2))
        summary = f"{vary(base.summary)} {extra} Hosts involved: {', '.join(rng.sample(hosts, 3))}."
        corpus.append(
            base.model_copy(
                update={
                    "id": f"syn-{n:05d}-{base.id}"[:120],
                    "title": f"{base.title} ({rng.choice(services)})",
                    "services": sorted(set(rng.sample(services, 2)) | set(base.services)),
                    "summary": summary,
                    "root_causes": [vary(cause) for cause in base.root_causes],
                }
            )
        )
    return corpus


def query_texts(count: int, seed: int = 11) -> list[str]:
    """Incident-like queries: the example incidents' search text and postmortem symptoms."""
    rng = random.Random(seed)
    bases, incidents = examples()
    pool = [incident_query(incident) for incident in incidents]
    for pm in bases:
        words = f"{pm.title}. {pm.impact or pm.summary}".split()
        pool.append(" ".join(words[:60]))
    texts = []
    for n in range(count):
        words = pool[n % len(pool)].split()
        kept = [w for w in words if rng.random() > 0.2] or words
        texts.append(" ".join(kept))
    return texts


def build(data_dir: Path, size: int) -> dict[str, float]:
    settings = scratch_settings(data_dir)
    corpus = synthetic_corpus(size)
    store = Store.open(settings)
    embedder = SyntheticDocsEmbedder(make_embedder(settings))
    vectors = ChromaVectorIndex(settings, embedder.model_id, embedder.dimension, store.index_state)
    try:
        started = time.perf_counter()
        store.save(corpus, source="bench")
        saved = time.perf_counter() - started
        started = time.perf_counter()
        report = Indexer(store, embedder, vectors, settings).sync()
        indexed = time.perf_counter() - started
    finally:
        vectors.close()
        store.close()
    return {
        "postmortems": len(corpus),
        "chunks": report.chunks,
        "store_seconds": saved,
        "index_seconds": indexed,
        "peak_rss_mib": peak_rss_mib(),
    }


ROWS = (
    "embedding only, cold",
    "lexical",
    "dense, cold",
    "hybrid, cold",
    "dense, repeated",
    "hybrid, repeated",
)
"""What is timed: cold rows use a text never searched before; repeated rows the same text
again, its query vector cached."""


def _mode(name: str) -> SearchMode:
    assert name in ("lexical", "dense", "hybrid"), name
    return name  # type: ignore[return-value]


def search(data_dir: Path, count: int) -> dict[str, float]:
    scratch = scratch_settings(data_dir)
    # No results kept: a repeated search would be answered from the last result, and this
    # times the search itself (`bench/api.py`'s "same text" row times kept results).
    unkept = scratch.retrieval.model_copy(update={"result_cache": 0})
    settings = scratch.model_copy(update={"retrieval": unkept})
    store = Store.open(settings)
    real = make_embedder(settings)  # as configured: RCA_RETRIEVAL__INT8 applies
    embedder = SyntheticDocsEmbedder(real)
    vectors = ChromaVectorIndex(settings, embedder.model_id, embedder.dimension, store.index_state)
    searcher = SimilarSearch(store, embedder, vectors, settings)
    texts = query_texts(count)
    results: dict[str, float] = {}
    try:
        real.embed(["warm up"], "query")
        started = time.perf_counter()
        searcher.search(texts[0], k=5)  # builds the in-memory BM25 index, opens chroma
        results["first_search_seconds"] = time.perf_counter() - started
        for text in texts[:20]:
            searcher.search(text, k=5)
        series: dict[str, list[float]] = {name: [] for name in ROWS}
        for n, text in enumerate(texts):
            for name, run in series.items():
                mode, _, how = name.partition(", ")
                asked = text if how == "repeated" or mode == "lexical" else f"{text} [{n} {name}]"
                if how == "repeated":
                    searcher.search(asked, k=5, mode=_mode(mode))  # its vector is cached now
                started = time.perf_counter()
                if mode == "embedding only":
                    real.embed([asked], "query")
                else:
                    searcher.search(asked, k=5, mode=_mode(mode))
                run.append((time.perf_counter() - started) * 1000)
        for name, run in series.items():
            results[f"{name} p50"] = percentile(run, 50)
            results[f"{name} p99"] = percentile(run, 99)
        results["peak_rss_mib"] = peak_rss_mib()
    finally:
        vectors.close()
        store.close()
    return results


PHASES = ("build", "search", "lexical", "rss-old", "rss-new-build", "rss-new-open", "searchable")


def _phase(args: argparse.Namespace) -> dict[str, float]:
    texts = query_texts(args.queries)
    if args.phase == "build":
        return build(args.data_dir, args.postmortems)
    if args.phase == "search":
        return search(args.data_dir, args.queries)
    if args.phase == "lexical":
        return lexical_phase(args.data_dir, texts, args.repeats)
    if args.phase == "searchable":
        return searchable_phase(args.data_dir, max(5, args.repeats))
    return rss_phase(args.data_dir, "old" if args.phase == "rss-old" else "new", texts)


def _run(phase: str, data_dir: str, args: argparse.Namespace) -> dict[str, float]:
    """One phase in its own process; its result is echoed to stderr at once, so that a later
    phase's failure does not lose it."""
    done = subprocess.run(
        [
            *(sys.executable, __file__, "--phase", phase, "--data-dir", data_dir),
            *("--postmortems", str(args.postmortems), "--queries", str(args.queries)),
            *("--repeats", str(args.repeats)),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"phase {phase} failed:\n{done.stderr[-3000:]}")
    line = done.stdout.strip().splitlines()[-1]
    print(f"{phase}: {line}", file=sys.stderr, flush=True)
    result: dict[str, float] = json.loads(line)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postmortems", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each build and update")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="build the corpus here and keep it; a later run with the same directory only "
        "searches (default: a temporary directory)",
    )
    parser.add_argument(
        "--lexical-only", action="store_true", help="skip the dense and hybrid search rows"
    )
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(_phase(args)))
        return
    with tempfile.TemporaryDirectory(prefix="rca-bench-search-") as scratch:
        tmp = str(args.data_dir or scratch)
        built_file = Path(tmp) / "bench-build.json"
        phases = {}
        if built_file.exists():
            phases["build"] = json.loads(built_file.read_text())
        else:
            phases["build"] = _run("build", tmp, args)
            built_file.write_text(json.dumps(phases["build"]))
        if not args.lexical_only:
            phases["search"] = _run("search", tmp, args)
        for phase in ("lexical", "searchable"):
            phases[phase] = _run(phase, tmp, args)
        with tempfile.TemporaryDirectory(prefix="rca-bench-rss-") as rss_scratch:
            copy = str(copy_store(Path(tmp), Path(rss_scratch)))
            for phase in ("rss-old", "rss-new-build", "rss-new-open"):
                phases[phase] = _run(phase, copy, args)
    _report(args, phases)


def _report(args: argparse.Namespace, phases: dict[str, dict[str, float]]) -> None:
    built = phases["build"]
    print(
        f"corpus: {built['postmortems']:.0f} synthetic postmortems, {built['chunks']:.0f} chunks; "
        f"store {built['store_seconds']:.1f} s, index {built['index_seconds']:.1f} s "
        f"(fake document vectors), peak RSS {built['peak_rss_mib']:.0f} MiB"
    )
    if "search" in phases:
        searched = phases["search"]
        print(f"first search (opens the indexes): {searched['first_search_seconds']:.2f} s")
        print(f"{args.queries} queries, each timed once, k=5, milliseconds:")
        print(f"{'':22s} {'p50':>7s} {'p99':>7s} {'p50 / cold embedding':>21s}")
        base = searched["embedding only, cold p50"]
        for name in ROWS:
            p50, p99 = searched[f"{name} p50"], searched[f"{name} p99"]
            print(f"{name:22s} {p50:7.1f} {p99:7.1f} {p50 / base:20.2f}x")
        print(f"peak RSS of the search process: {searched['peak_rss_mib']:.0f} MiB")
    lexical = phases["lexical"]
    old = lexical["old bm25s rebuild s"]
    print(f"lexical index, medians of {args.repeats} runs, seconds (ratio to the old rebuild):")
    for name in (
        "old bm25s rebuild s",
        "tantivy in-memory build s",
        "tantivy persisted build s",
        "tantivy in-memory update s",
        "tantivy persisted update s",
        "tantivy persisted open s",
    ):
        print(f"  {name[:-2]:34s} {lexical[name]:8.3f} {lexical[name] / old:8.3f}x")
    print(f"  index on disk: {lexical['index on disk MiB']:.0f} MiB")
    print(f"lexical queries ({args.queries}, top 50, terms only), milliseconds:")
    for name in ("old bm25s", "tantivy in-memory", "tantivy persisted"):
        p50, p99 = lexical[f"{name} query p50 ms"], lexical[f"{name} query p99 ms"]
        print(f"  {name:34s} p50 {p50:6.2f}  p99 {p99:6.2f}")
    for key, value in phases["searchable"].items():
        print(f"{key[:-2]}: {value:.2f} s")
    print(f"peak RSS of a process answering {args.queries} lexical searches (hits explained):")
    for phase, label in (
        ("rss-old", "old: every postmortem and bm25s in memory"),
        ("rss-new-build", "new: first process on the machine, builds the index"),
        ("rss-new-open", "new: the index exists (every later process)"),
    ):
        row = phases[phase]
        print(f"  {label:52s} {row['peak_rss_mib']:6.0f} MiB  ({row['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
