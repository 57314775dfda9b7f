"""The lexical side of bench/search.py: the old per-process bm25s rebuild against tantivy, in
memory (built in each process) and persisted (shared, caught up incrementally); how soon an
import is found by another, already running, search process; the memory each keeps.

Every phase runs on a copy of the benchmark's SQLite store (it saves revisions), without chroma:
lexical search needs neither the vector index nor the embedding model.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import bm25s
import numpy as np

from bench._common import median, peak_rss_mib, percentile, scratch_settings
from rca.domain import Postmortem
from rca.redaction import PlaceholderTable, Redactor, redact_postmortem
from rca.store import Store
from retrieval.chunking import full_text, section_texts
from retrieval.lexical import terms
from retrieval.lexical_index import SCHEMA_VERSION, LexicalIndex
from retrieval.lexical_shared import SharedLexical
from retrieval.search import SimilarSearch

ROOT = Path(__file__).resolve().parent.parent


def copy_store(data_dir: Path, scratch: Path) -> Path:
    """A copy of the benchmark's store (nothing else) in `scratch`/data."""
    target = scratch / "data"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(data_dir / "rca.db", target / "rca.db")
    return target


class OldBm25:
    """What `SimilarSearch.corpus()` built in every process before: every postmortem, its
    sections, and a bm25s index over the same terms."""

    def __init__(self, store: Store) -> None:
        self.postmortems = {pm.id: (pm, rev) for pm, rev in store.latest_postmortems()}
        self.ids = list(self.postmortems)
        self.sections = {i: section_texts(self.postmortems[i][0]) for i in self.ids}
        corpus_terms = [terms(full_text(self.postmortems[i][0])) for i in self.ids]
        self.vocab = {t for doc in corpus_terms for t in doc}
        self.bm25 = bm25s.BM25(k1=1.2, b=0.75)
        self.bm25.index(corpus_terms, show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        wanted = [t for t in terms(query) if t in self.vocab]
        if not wanted:
            return []
        scores = np.asarray(self.bm25.get_scores(wanted), dtype=np.float64)
        top = np.argpartition(-scores, k - 1)[:k]
        ranked = sorted(top.tolist(), key=lambda i: (-scores[i], self.ids[i]))
        return [(self.ids[i], float(scores[i])) for i in ranked if scores[i] > 0.0]


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _revise(store: Store, ident: str, n: int) -> None:
    pm: Postmortem = store.get_postmortem(ident).postmortem
    store.save_postmortem(pm.model_copy(update={"summary": f"{pm.summary} revised{n}"}), "bench")


def lexical_phase(data_dir: Path, texts: list[str], repeats: int) -> dict[str, float]:
    """Build, update, open and query times of the three lexical indexes (seconds / ms)."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rca-bench-lexical-") as scratch:
        settings = scratch_settings(copy_store(data_dir, Path(scratch)))
        store = Store.open(settings)
        try:
            root = settings.data_dir / "lexical" / SCHEMA_VERSION
            old: list[OldBm25] = []
            out["old bm25s rebuild s"] = median(
                [_timed(lambda: old.append(OldBm25(store))) for _ in range(repeats)]
            )
            memory: list[LexicalIndex] = []

            def build_in_memory() -> None:
                index = LexicalIndex()
                index.write(store.latest_postmortems())
                memory.append(index)

            out["tantivy in-memory build s"] = median(
                [_timed(build_in_memory) for _ in range(repeats)]
            )
            shared = SharedLexical(store, root)
            out["tantivy persisted build s"] = median(
                [_timed(shared.rebuild) for _ in range(repeats)]
            )
            ids = sorted(store.latest_revisions())
            updates = []
            for n in range(max(5, repeats)):
                _revise(store, ids[n * 997 % len(ids)], n)
                updates.append(_timed(shared.sync))
            out["tantivy persisted update s"] = median(updates)
            in_memory_updates = []
            for n in range(max(5, repeats)):
                one = list(store.latest_postmortems(ids[n * 997 % len(ids) :][:1]))
                started = time.perf_counter()
                memory[-1].write(one)
                in_memory_updates.append(time.perf_counter() - started)
            out["tantivy in-memory update s"] = median(in_memory_updates)
            out["tantivy persisted open s"] = median(
                [_timed(lambda: SharedLexical(store, root).current()) for _ in range(5)]
            )
            persisted = shared.current()
            searches: dict[str, Callable[[str], object]] = {
                "old bm25s": lambda t: old[-1].search(t, 50),
                "tantivy in-memory": lambda t: memory[-1].search(terms(t), 50),
                "tantivy persisted": lambda t: persisted.search(terms(t), 50),
            }
            for name, search in searches.items():
                for text in texts[:20]:
                    search(text)
                times = []
                for text in texts:
                    started = time.perf_counter()
                    search(text)
                    times.append((time.perf_counter() - started) * 1000)
                out[f"{name} query p50 ms"] = percentile(times, 50)
                out[f"{name} query p99 ms"] = percentile(times, 99)
            out["index on disk MiB"] = sum(
                f.stat().st_size for f in root.rglob("*") if f.is_file()
            ) / (1 << 20)
        finally:
            store.close()
    return out


def rss_phase(data_dir: Path, variant: str, texts: list[str]) -> dict[str, float]:
    """Peak RSS of a process that opens the lexical side and answers lexical searches with
    hits explained: the old way (every postmortem and bm25s in memory) or the new (tantivy
    index on disk, hits loaded by id). Run in a fresh process per variant."""
    settings = scratch_settings(data_dir)
    store = Store.open(settings)
    try:
        started = time.perf_counter()
        if variant == "old":
            old = OldBm25(store)
            redactor = Redactor(ip_addresses=settings.redaction.ip_addresses)
            shown: dict[str, object] = {}  # as the old `_Corpus.shown`: never evicted
            for text in texts:
                for pm_id, _score in old.search(text, 5):
                    if pm_id not in shown:
                        pm = redact_postmortem(
                            old.postmortems[pm_id][0], redactor, PlaceholderTable()
                        )
                        sections = section_texts(pm)
                        shown[pm_id] = (pm, {n: set(terms(b)) for n, b in sections.items()})
        else:
            search = SimilarSearch(store, None, None, settings)
            for text in texts:
                search.search(text, k=5, mode="lexical")
        seconds = time.perf_counter() - started
    finally:
        store.close()
    return {"peak_rss_mib": peak_rss_mib(), "seconds": seconds}


_SERVING = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from pathlib import Path
    from bench._common import scratch_settings
    from rca.store import Store
    from retrieval.search import SimilarSearch

    settings = scratch_settings(Path(sys.argv[1]))
    search = SimilarSearch(Store.open(settings), None, None, settings)
    search.search("warm up the search path", k=1, mode="lexical")
    print("ready", flush=True)
    for line in sys.stdin:
        word = line.strip()
        while True:
            hits = search.search(word, k=1, mode="lexical").hits
            if hits and hits[0].postmortem_id.endswith(word):
                print(time.time(), flush=True)
                break
            time.sleep(0.01)
    """
)


def searchable_phase(data_dir: Path, repeats: int) -> dict[str, float]:
    """Seconds from an import's commit until an already running search process (polling every
    10 ms, as a stream of API requests would) finds it: when only that process catches up, and
    when the importing process syncs the lexical index right after its commit (`rca import`)."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rca-bench-searchable-") as scratch:
        settings = scratch_settings(copy_store(data_dir, Path(scratch)))
        store = Store.open(settings)
        root = settings.data_dir / "lexical" / SCHEMA_VERSION
        importer = SharedLexical(store, root)
        importer.sync()  # the machine's index exists, as it would on a running system
        base = store.get_postmortem(sorted(store.latest_revisions())[0]).postmortem
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        serving = subprocess.Popen(
            [sys.executable, "-c", _SERVING, str(settings.data_dir), str(ROOT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert serving.stdin is not None and serving.stdout is not None
        try:
            assert serving.stdout.readline().strip() == "ready"
            for how in ("search process catches up", "importer syncs"):
                delays: list[float] = []
                for n in range(repeats):
                    word = f"zqx{len(delays)}{how[0]}{n}"
                    pm = base.model_copy(update={"id": f"imported-{word}", "summary": word})
                    serving.stdin.write(f"{word}\n")
                    serving.stdin.flush()
                    store.save([pm], "bench")
                    committed = time.time()
                    if how == "importer syncs":
                        importer.sync()
                    delays.append(float(serving.stdout.readline()) - committed)
                out[f"import searchable, {how} s"] = median(delays)
                out[f"import searchable, {how} max s"] = max(delays)
        finally:
            serving.stdin.close()
            serving.wait(timeout=120)
            serving.stdout.close()
            store.close()
    return out
