"""`rca eval retrieval`: similar-incident search scored on a labelled benchmark.

The benchmark corpus is indexed into a temporary store and vector index (nothing touches the
user's data directory), every query is ranked by each system -- BM25 alone, dense alone, and the
hybrid that `rca similar` runs -- through the same `SimilarSearch` code path the product uses,
and the condensed rankings (see `evals.public_benchmark.condense`) are scored with
`evals.ir_metrics.evaluate`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from evals.ir_metrics import EvalResult, Run, evaluate, read_qrels, write_run
from evals.public_benchmark import (
    BenchQuery,
    CorpusDoc,
    condense,
    load_corpus,
    load_judged,
    load_queries,
    query_classes,
)
from rca.config import Settings
from rca.domain import Postmortem
from rca.domain.similar import SearchMode
from rca.errors import InvalidInput, Problem
from rca.ports import Embedder
from rca.store import Store
from retrieval.search import SimilarSearch
from retrieval.service import make_embedder, open_retrieval

System = Literal["bm25", "dense", "hybrid"]
SYSTEMS: tuple[System, ...] = ("bm25", "dense", "hybrid")
_MODE: dict[System, SearchMode] = {"bm25": "lexical", "dense": "dense", "hybrid": "hybrid"}
QueryField = Literal["query", "query_title_summary"]
Log = Callable[[str], None]


@dataclass(frozen=True)
class BenchmarkFiles:
    """Where the benchmark's four files are."""

    corpus: Path
    queries: Path
    qrels: Path
    judged: Path


@dataclass(frozen=True)
class RetrievalEvalReport:
    """Scores and rankings of each system, and what indexing took."""

    results: dict[System, EvalResult]
    runs: dict[System, Run]
    documents: int
    chunks: int
    index_seconds: float
    query_seconds: dict[System, float]


def doc_to_postmortem(doc: CorpusDoc, source: str = "<corpus>") -> Postmortem:
    """A benchmark write-up as a postmortem: its whole text is the summary section.

    The write-ups are prose, not structured postmortems; the summary is kept first (it is what
    the embedder reads before anything else), then the body. A missing title becomes the
    company and product, so that every hit has a readable name.
    """
    fallback = " ".join(part for part in (doc.company, doc.product, "incident") if part)
    text = "\n\n".join(part for part in (doc.summary, doc.body) if part.strip())
    try:
        return Postmortem(id=doc.id, title=doc.title.strip() or fallback, summary=text or fallback)
    except ValidationError as err:
        problems = [
            Problem(
                reason=e["msg"],
                path=source,
                location=".".join([doc.id, *(str(part) for part in e["loc"])]),
            )
            for e in err.errors()
        ]
        raise InvalidInput(problems) from None


def run_retrieval_eval(
    files: BenchmarkFiles,
    settings: Settings,
    *,
    systems: Sequence[System] = SYSTEMS,
    query_field: QueryField = "query",
    embedder: Embedder | None = None,
    log: Log | None = None,
) -> RetrievalEvalReport:
    """Index the corpus into a temporary data directory and score each system's rankings."""
    say = log or (lambda _message: None)
    corpus = load_corpus(files.corpus)
    queries = load_queries(files.queries)
    qrels = read_qrels(files.qrels)
    judged = load_judged(files.judged)
    if not corpus:
        raise InvalidInput([Problem("the corpus is empty", path=str(files.corpus))])
    if not queries:
        raise InvalidInput([Problem("there are no queries", path=str(files.queries))])
    postmortems = [doc_to_postmortem(doc, str(files.corpus)) for doc in corpus]
    everything = sorted(pm.id for pm in postmortems)
    with tempfile.TemporaryDirectory(prefix="rca-eval-retrieval-") as tmp:
        scratch = settings.model_copy(
            update={
                "data_dir": Path(tmp),
                "database_url": None,
                # An embedded index only: nothing of the benchmark reaches a configured server.
                "retrieval": settings.retrieval.model_copy(update={"chroma_url": None}),
            }
        )
        store = Store.open(scratch)
        retrieval = open_retrieval(scratch, store, embedder or make_embedder(scratch))
        try:
            store.save(postmortems, source=str(files.corpus))
            say(f"indexing {len(postmortems)} documents with {retrieval.embedder.model_id} …")
            started = time.perf_counter()
            report = retrieval.indexer.sync()
            index_seconds = time.perf_counter() - started
            say(f"indexed {report.chunks} chunks in {index_seconds:.1f} s")
            runs: dict[System, Run] = {}
            query_seconds: dict[System, float] = {}
            for system in systems:
                started = time.perf_counter()
                runs[system] = {
                    q.qid: condense(
                        q.qid,
                        _ranking(retrieval.search, q, system, query_field, everything),
                        q.exclude,
                        judged,
                    )
                    for q in queries
                }
                query_seconds[system] = time.perf_counter() - started
                say(f"{system}: {len(queries)} queries in {query_seconds[system]:.1f} s")
        finally:
            retrieval.close()
            store.close()
    classes = query_classes(queries)
    results = {system: evaluate(runs[system], qrels, classes) for system in runs}
    return RetrievalEvalReport(
        results=results,
        runs=runs,
        documents=len(postmortems),
        chunks=report.chunks,
        index_seconds=index_seconds,
        query_seconds=query_seconds,
    )


def _ranking(
    search: SimilarSearch,
    query: BenchQuery,
    system: System,
    field: QueryField,
    everything: Sequence[str],
) -> list[tuple[str, float]]:
    """The whole corpus ranked: what the system scored, then the rest (score 0, by id).

    BM25 gives nothing to a document without a query term; the protocol ranks every document,
    so the unscored ones follow in a fixed order rather than vanishing from the run.
    """
    text = query.query if field == "query" else query.query_title_summary
    # The protocol ranks the whole corpus: every retriever proposes every document it scores.
    scored = search.rank(text, None, _MODE[system], depth=len(everything)).scored()
    seen = {docid for docid, _ in scored}
    return scored + [(docid, 0.0) for docid in everything if docid not in seen]


def write_runs(report: RetrievalEvalReport, run_out: Path) -> list[Path]:
    """The hybrid run at `run_out`, each other system beside it (`run.bm25.txt`, ...)."""
    written = []
    for system, run in report.runs.items():
        path = run_out if system == "hybrid" else run_out.with_suffix(f".{system}{run_out.suffix}")
        write_run(path, run, tag=f"rca-{system}")
        written.append(path)
    return written
