"""What one similar search costs in CPU, part by part, and the latency floor that puts under
`bench/api.py`'s similar-search rows (32 closed-loop clients on 2 cores).

    .venv/bin/python bench/search_cost.py [--data-dir .rca/bench-api] [--queries 200]
        [--rounds 5]

It reads the SQLite data `bench/api.py --scale 10k --prepare-only` builds (10,000 synthetic
postmortems, 47,943 chunks embedded by the bundled MiniLM, 100,000 incidents), on a copy, in
one process: the store, the lexical index, embedded chroma and the embedding model, as a
single-process `rca serve` holds them (no HTTP, so no server or embedding-service hop).

Each part runs `--queries` times per round, and its CPU time (`time.process_time`: every thread
of this process, chroma's and the model's too) is divided by the count; rows are medians over
`--rounds`. The baseline, measured in the same run, is reading one incident by id from the
store (the core of `GET /v1/incidents/{id}`); the other rows are also given as ratios to it.

- **query embedding, alone / in a batch of 16**: texts never embedded before, one at a time,
  or sixteen asked at once from sixteen threads (the model thread encodes them as one batch,
  as the embedding service does under load);
- **chroma query, n nearest**: the vector index alone, with the query vectors of real texts;
  a search asks for `3 x RCA_RETRIEVAL__CANDIDATES` (150) chunks;
- **lexical search**: the store's index state read, then the tantivy index, 50 candidates
  (as a search does before it ranks);
- **search, incident**: `SimilarSearch.search` of a stored incident whose query vector is
  kept (its text was searched before), with no whole results kept
  (`RCA_RETRIEVAL__RESULT_CACHE=0`): everything a search does but embed;
- **search, new text**: the same for a text never searched before (so with its embedding).

The floor of a row is 32 x CPU / 2 cores: the lowest mean latency 32 closed-loop clients can
see on 2 cores if the requests cost only that. The floor of the parts no tuning of rca's own
code removes (the batched embedding and the 150-chunk chroma query of a new text; the chroma
query of an incident whose vector is kept) is printed too: if it is near or above a latency
target, the target needs fewer clients per core, or a cheaper encoder or vector store.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._api_report import floor_ms
from bench._api_scenarios import query_texts
from bench._common import median, scratch_settings
from rca.domain import Incident
from rca.ports import Embedder
from rca.store import Store
from retrieval.lexical import terms
from retrieval.search import CHUNKS_PER_POSTMORTEM, SimilarSearch
from retrieval.service import make_embedder
from retrieval.vector_index import ChromaVectorIndex

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 32
CORES = 2
BATCH = 16
BASELINE = "baseline: read one incident by id"


def per_op_ms(run: Callable[[int], None], count: int) -> float:
    """CPU milliseconds per call of `run(i)` for i in range(count), all threads counted."""
    started = time.process_time()
    for i in range(count):
        run(i)
    return (time.process_time() - started) * 1000 / count


def floor(cpu_ms: float) -> float:
    """The lowest mean latency of CLIENTS closed-loop clients on CORES cores at this cost."""
    return floor_ms(cpu_ms, CLIENTS, CORES)


def copied_data(source: Path, scratch: Path) -> Path:
    """A copy of the 10k SQLite data (searching writes: the lexical index, chroma's files)."""
    data = source / "sqlite" / "data"
    if not (data / "rca.db").is_file() or not (data / "chroma").is_dir():
        raise SystemExit(
            f"bench/search_cost.py: no 10k SQLite data under {source}; build it first with "
            ".venv/bin/python bench/api.py --scale 10k --backends sqlite --prepare-only"
        )
    target = scratch / "data"
    shutil.copytree(data, target, ignore=shutil.ignore_patterns("lexical", "*.writer-lock"))
    return target


class Parts:
    """The parts of a search, each a callable of a query number, on one round's fresh texts."""

    def __init__(
        self, search: SimilarSearch, embedder: Embedder, incidents: list[Incident], count: int
    ) -> None:
        self.search = search
        self.embedder = embedder
        self.incidents = incidents
        self.count = count
        self.texts = query_texts(count)
        self.vectors = embedder.embed(self.texts, "query")
        self.round = 0
        self.pool = ThreadPoolExecutor(BATCH, thread_name_prefix="bench-query")

    def fresh(self, i: int, part: str) -> str:
        """A text no earlier call embedded (so none is answered from a cache)."""
        return f"{self.texts[i % len(self.texts)]} (round {self.round} {part} {i})"

    def read(self, i: int) -> None:
        self.search.store.get_incident(self.incidents[i % len(self.incidents)].id)

    def embed_alone(self, i: int) -> None:
        self.embedder.embed([self.fresh(i, "alone")], "query")

    def embed_batched(self, i: int) -> None:
        """Sixteen texts at once; call it count / 16 times (`per_op_ms` divides by count)."""
        asked = [self.fresh(i * BATCH + j, "batch") for j in range(BATCH)]
        list(self.pool.map(lambda text: self.embedder.embed([text], "query"), asked))

    def chroma(self, n: int) -> Callable[[int], None]:
        vectors = self.search.vectors
        assert vectors is not None

        def run(i: int) -> None:
            vectors.query(self.vectors[i % len(self.vectors)], n)

        return run

    def lexical(self, i: int) -> None:
        state = self.search.store.index_state.snapshot("")
        index = self.search.lexical.current(state.fingerprint)
        index.search(terms(self.texts[i % len(self.texts)]), 50, None)

    def search_incident(self, i: int) -> None:
        self.search.search(self.incidents[i % len(self.incidents)], k=5)

    def search_text(self, i: int) -> None:
        self.search.search(self.fresh(i, "search"), k=5)


def measure(parts: Parts, rounds: int, depth: int) -> dict[str, float]:
    """Median CPU ms per operation of each row over `rounds`."""
    count = parts.count
    rows: dict[str, tuple[Callable[[int], None], int, int]] = {
        BASELINE: (parts.read, count, 1),
        "query embedding, alone": (parts.embed_alone, count, 1),
        f"query embedding, batch of {BATCH} (per query)": (
            parts.embed_batched,
            count // BATCH,
            BATCH,
        ),
        "chroma query, 5 nearest": (parts.chroma(5), count, 1),
        "chroma query, 50 nearest": (parts.chroma(50), count, 1),
        f"chroma query, {depth} nearest": (parts.chroma(depth), count, 1),
        "lexical search, 50 (and the store state read)": (parts.lexical, count, 1),
        "search, incident (vector kept)": (parts.search_incident, count, 1),
        "search, new text": (parts.search_text, count, 1),
    }
    for incident in parts.incidents[:count]:  # keep their vectors, as a warm server does
        parts.search.search(incident, k=5)
    found: dict[str, list[float]] = {name: [] for name in rows}
    for round_no in range(rounds):
        parts.round = round_no
        for name, (run, calls, per_call) in rows.items():
            found[name].append(per_op_ms(run, calls) / per_call)
    return {name: median(values) for name, values in found.items()}


def report(cpu: dict[str, float], depth: int, embed_row: str) -> list[str]:
    """The table and the floors, as printed lines."""
    base = cpu[BASELINE]
    lines = [
        f"{'part':48s} {'CPU ms':>8s} {'x baseline':>11s} {'floor ms':>9s}",
        *(f"{name:48s} {ms:8.2f} {ms / base:11.1f} {floor(ms):9.0f}" for name, ms in cpu.items()),
    ]
    chroma = cpu[f"chroma query, {depth} nearest"]
    unavoidable_new = cpu[embed_row] + chroma
    lines += [
        "",
        f"floor = {CLIENTS} clients x CPU ms / {CORES} cores (the lowest mean latency at that "
        "cost; p99 is above the mean).",
        f"parts no tuning of rca's code removes, new text: batched embedding + chroma "
        f"{depth} = {unavoidable_new:.2f} ms, floor {floor(unavoidable_new):.0f} ms",
        f"parts no tuning of rca's code removes, incident (vector kept): chroma {depth} = "
        f"{chroma:.2f} ms, floor {floor(chroma):.0f} ms",
        "not counted here: HTTP to rca and, with `rca serve --workers N`, to the embedding "
        "service; JSON of the answer",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".rca" / "bench-api")
    parser.add_argument("--queries", type=int, default=200, help="operations per row and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.queries < BATCH or args.rounds < 1:
        parser.error(f"--queries must be at least {BATCH} and --rounds at least 1")
    with tempfile.TemporaryDirectory(prefix="rca-search-cost-") as tmp:
        scratch = scratch_settings(copied_data(args.data_dir, Path(tmp)))
        unkept = scratch.retrieval.model_copy(update={"result_cache": 0})
        settings = scratch.model_copy(update={"retrieval": unkept})
        store = Store.open(settings)
        embedder = make_embedder(settings)
        vectors = ChromaVectorIndex(
            settings, embedder.model_id, embedder.dimension, store.index_state
        )
        try:
            search = SimilarSearch(store, embedder, vectors, settings)
            pages = store.incident_page(args.queries)
            incidents = [store.get_incident(summary.id) for summary in pages]
            if not incidents:
                raise SystemExit(f"bench/search_cost.py: no incidents in {args.data_dir}")
            parts = Parts(search, embedder, incidents, args.queries)
            depth = settings.retrieval.candidates * CHUNKS_PER_POSTMORTEM
            started = time.monotonic()
            cpu = measure(parts, args.rounds, depth)
            parts.pool.shutdown()
        finally:
            vectors.close()
            store.close()
    embed_row = f"query embedding, batch of {BATCH} (per query)"
    print(
        f"similar search CPU by part: 10k data ({len(incidents)} incidents, {args.queries} "
        f"operations per row), medians of {args.rounds} rounds, "
        f"{time.monotonic() - started:.0f} s"
    )
    print("\n".join(report(cpu, depth, embed_row)))


if __name__ == "__main__":
    main()
