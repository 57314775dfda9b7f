"""Ranked-retrieval metrics (nDCG@10, MRR, P@5) and TREC qrels/run files, in plain Python.

Written to score the similar-incident retriever on a benchmark without pulling in a scorer
package. The conventions follow trec_eval where it matters: unjudged documents count as not
relevant, P@k divides by k even when fewer than k documents were returned, and every query in
the query set is averaged, including those the run did not answer (they score 0).

Files are TREC text: qrels lines are ``qid iter docid grade``, run lines are
``qid Q0 docid rank score tag``; fields are separated by any whitespace and blank lines are
skipped. A malformed line raises `FormatError` naming the file and the line number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

Qrels = dict[str, dict[str, int]]
"""qid -> docid -> relevance grade (0 = judged not relevant)."""
Run = dict[str, list[tuple[str, float]]]
"""qid -> ranked (docid, score) pairs, best first."""

MetricName = Literal["ndcg@10", "mrr", "p@5"]
METRICS: tuple[MetricName, ...] = ("ndcg@10", "mrr", "p@5")
METRICS_VERSION = "2"
"""Bumped whenever a metric's definition changes, so stored results stay comparable."""

NDCG_K = 10
P_K = 5
MIN_GRADE = 2
"""The grade a document needs to count as relevant for MRR and P@5."""


class FormatError(ValueError):
    """A line of an input file cannot be read; the message names the file and the line."""

    def __init__(self, path: Path | str, line: int, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.path}:{line}: {reason}")


# ---------------------------------------------------------------------------------------------
# Files


def read_qrels(path: Path | str) -> Qrels:
    """Read TREC qrels (``qid iter docid grade``, the iter column ignored).

    The same (qid, docid) pair twice is an error: which grade holds would be a guess.
    """
    qrels: Qrels = {}
    for number, fields in _numbered_fields(path):
        if len(fields) != 4:
            raise FormatError(
                path, number, f"expected 4 fields (qid iter docid grade), got {len(fields)}"
            )
        qid, _iteration, docid, grade_text = fields
        grade = _parse_int(path, number, "grade", grade_text)
        grades = qrels.setdefault(qid, {})
        if docid in grades:
            raise FormatError(path, number, f"document {docid!r} judged twice for query {qid!r}")
        grades[docid] = grade
    return qrels


def read_run(path: Path | str) -> Run:
    """Read a TREC run (``qid Q0 docid rank score tag``) into lists ordered by the rank column.

    Order follows ``rank`` (file order among equal ranks); trec_eval instead sorts by score and
    breaks ties by docid, so the two agree whenever scores do not increase down the ranking, as
    `write_run` guarantees. A document listed twice for one query is an error.
    """
    rows: dict[str, list[tuple[int, str, float]]] = {}
    seen: dict[str, set[str]] = {}
    for number, fields in _numbered_fields(path):
        if len(fields) != 6:
            raise FormatError(
                path, number, f"expected 6 fields (qid Q0 docid rank score tag), got {len(fields)}"
            )
        qid, _q0, docid, rank_text, score_text, _tag = fields
        rank = _parse_int(path, number, "rank", rank_text)
        score = _parse_float(path, number, score_text)
        if docid in seen.setdefault(qid, set()):
            raise FormatError(path, number, f"document {docid!r} listed twice for query {qid!r}")
        seen[qid].add(docid)
        rows.setdefault(qid, []).append((rank, docid, score))
    # sorted() is stable, so equal ranks keep their file order.
    return {
        qid: [(docid, score) for _, docid, score in sorted(entries, key=lambda e: e[0])]
        for qid, entries in rows.items()
    }


def write_run(path: Path | str, run: Mapping[str, Sequence[tuple[str, float]]], tag: str) -> None:
    """Write a TREC run file: every given document, in the given order, ranks from 1.

    Nothing is cut or re-sorted. Queries are written in the mapping's order. Refused with
    `ValueError`: ids or a tag containing whitespace, a document twice in one query, a
    non-finite score, or a score higher than the one before it (the list would not be
    best-first, and a scorer that sorts by score would read a different ranking).
    Scores are written with `repr`, so `read_run` gets back the same floats.
    """
    _check_token("tag", tag)
    lines: list[str] = []
    for qid, ranking in run.items():
        _check_token("query id", qid)
        seen: set[str] = set()
        previous = math.inf
        for rank, (docid, score) in enumerate(ranking, start=1):
            _check_token("document id", docid)
            if docid in seen:
                raise ValueError(f"document {docid!r} listed twice for query {qid!r}")
            seen.add(docid)
            if not math.isfinite(score):
                raise ValueError(f"score of {docid!r} for query {qid!r} is not finite: {score}")
            if score > previous:
                raise ValueError(
                    f"query {qid!r}: score rises at rank {rank} ({score!r} > {previous!r}); "
                    "rankings must be best first"
                )
            previous = score
            lines.append(f"{qid} Q0 {docid} {rank} {score!r} {tag}\n")
    Path(path).write_text("".join(lines), encoding="utf-8")


def _numbered_fields(path: Path | str) -> list[tuple[int, list[str]]]:
    with Path(path).open(encoding="utf-8") as handle:
        return [(n, line.split()) for n, line in enumerate(handle, start=1) if line.strip()]


def _parse_int(path: Path | str, number: int, what: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FormatError(path, number, f"{what} is not an integer: {text!r}") from None


def _parse_float(path: Path | str, number: int, text: str) -> float:
    try:
        score = float(text)
    except ValueError:
        raise FormatError(path, number, f"score is not a number: {text!r}") from None
    if not math.isfinite(score):
        raise FormatError(path, number, f"score is not finite: {text!r}")
    return score


def _check_token(what: str, value: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{what} must be non-empty without whitespace: {value!r}")


# ---------------------------------------------------------------------------------------------
# Per-query metrics


def ndcg_at_k(ranked_ids: Sequence[str], grades: Mapping[str, int], k: int = NDCG_K) -> float:
    """Normalised discounted cumulative gain of the top ``k``, with exponential graded gains.

    ``DCG@k = sum over ranks i = 1..min(k, n) of (2**rel(d_i) - 1) / log2(i + 1)`` where ``rel``
    is the document's grade (unjudged or negative grades count 0), so grade 2 weighs 3 and
    grade 1 weighs 1 -- the gain the benchmark's reference numbers were computed with (linear
    gains score every system about 0.02 higher there). ``nDCG@k = DCG@k / IDCG@k``,
    the ideal DCG being that of the grades of *all* judged documents of the query sorted best
    first, whether or not the run returned them. With no positive grade at all, IDCG is 0 and
    the score is 0.
    """
    _check_ranking(ranked_ids, k)
    dcg = sum(_gain(grades, docid) / math.log2(i + 1) for i, docid in enumerate(ranked_ids[:k], 1))
    ideal = sorted((_gain(grades, docid) for docid in grades), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, 1))
    return dcg / idcg if idcg > 0 else 0.0


def reciprocal_rank(
    ranked_ids: Sequence[str], grades: Mapping[str, int], min_grade: int = MIN_GRADE
) -> float:
    """``1 / rank`` of the first document graded at least ``min_grade`` (whole list), else 0."""
    _check_ranking(ranked_ids, 1)
    for rank, docid in enumerate(ranked_ids, start=1):
        if grades.get(docid, 0) >= min_grade:
            return 1.0 / rank
    return 0.0


def precision_at_k(
    ranked_ids: Sequence[str], grades: Mapping[str, int], k: int = P_K, min_grade: int = MIN_GRADE
) -> float:
    """Share of the top ``k`` graded at least ``min_grade``; always divided by ``k``.

    A list shorter than ``k`` is not excused: the missing places count as not relevant.
    """
    _check_ranking(ranked_ids, k)
    return sum(1 for docid in ranked_ids[:k] if grades.get(docid, 0) >= min_grade) / k


def _gain(grades: Mapping[str, int], docid: str) -> int:
    return int(2 ** max(grades.get(docid, 0), 0)) - 1


def _check_ranking(ranked_ids: Sequence[str], k: int) -> None:
    if k < 1:
        raise ValueError(f"cutoff k must be at least 1, got {k}")
    if len(set(ranked_ids)) != len(ranked_ids):
        raise ValueError("a document appears twice in the ranking")


# ---------------------------------------------------------------------------------------------
# Aggregation


class Scores(BaseModel):
    """One value per metric: for a query, or a mean over queries or classes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ndcg_at_10: float
    """nDCG@10 with exponential graded gains (see `ndcg_at_k`)."""
    mrr: float
    """Reciprocal rank of the first document of grade >= 2 (its mean is MRR)."""
    p_at_5: float
    """Precision at 5, grade >= 2 counting as relevant."""

    def get(self, metric: MetricName) -> float:
        """The value of one metric, by its report name."""
        match metric:
            case "ndcg@10":
                return self.ndcg_at_10
            case "mrr":
                return self.mrr
            case "p@5":
                return self.p_at_5

    @classmethod
    def mean(cls, items: Sequence[Scores]) -> Scores:
        """Metric by metric mean; refused for an empty sequence."""
        if not items:
            raise ValueError("mean of no scores")
        n = len(items)
        return cls(
            ndcg_at_10=sum(s.ndcg_at_10 for s in items) / n,
            mrr=sum(s.mrr for s in items) / n,
            p_at_5=sum(s.p_at_5 for s in items) / n,
        )


class EvalResult(BaseModel):
    """A run scored against qrels over a fixed query set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    micro: Scores
    """Mean over queries."""
    macro: Scores
    """Mean over classes of each class's mean over its queries."""
    per_class: dict[str, Scores]
    """Each class's mean over its queries."""
    per_query: dict[str, Scores]
    """Every query of the query set, including those the run missed (all 0)."""
    metrics_version: str = METRICS_VERSION
    """`METRICS_VERSION` of the code that computed these numbers."""


def evaluate(run: Run, qrels: Qrels, query_class: Mapping[str, str]) -> EvalResult:
    """Score ``run`` on the queries of ``query_class`` (qid -> class).

    The query set is ``query_class``, not the qrels or the run, so two runs are always averaged
    over the same queries:

    - a query the run does not answer scores 0 on every metric;
    - a query with no relevant document in the qrels is still counted and scores 0 (a system
      cannot do well on it; dropping it would make the mean depend on the judgments' gaps);
    - qrels for queries outside the set are ignored (qrels may cover a larger benchmark);
    - a run query outside the set is a `ValueError`: the run was made for other queries.
    """
    if not query_class:
        raise ValueError("the query set is empty")
    unknown = sorted(set(run) - set(query_class))
    if unknown:
        raise ValueError(
            f"run has {len(unknown)} queries outside the query set, e.g. {unknown[0]!r}"
        )
    per_query: dict[str, Scores] = {}
    for qid in query_class:
        ranked = [docid for docid, _ in run.get(qid, [])]
        grades = qrels.get(qid, {})
        per_query[qid] = Scores(
            ndcg_at_10=ndcg_at_k(ranked, grades, NDCG_K),
            mrr=reciprocal_rank(ranked, grades, MIN_GRADE),
            p_at_5=precision_at_k(ranked, grades, P_K, MIN_GRADE),
        )
    by_class: dict[str, list[Scores]] = {}
    for qid, cls in query_class.items():
        by_class.setdefault(cls, []).append(per_query[qid])
    per_class = {cls: Scores.mean(items) for cls, items in sorted(by_class.items())}
    return EvalResult(
        micro=Scores.mean(list(per_query.values())),
        macro=Scores.mean(list(per_class.values())),
        per_class=per_class,
        per_query=per_query,
    )


_HEADER = (
    "system",
    "nDCG@10 micro",
    "nDCG@10 macro",
    "MRR micro",
    "MRR macro",
    "P@5 micro",
    "P@5 macro",
)


def format_table(rows: Mapping[str, EvalResult]) -> str:
    """A Markdown table, one row per system in the given order, values to 3 decimals."""
    lines = [
        "| " + " | ".join(_HEADER) + " |",
        "|---|" + "---:|" * (len(_HEADER) - 1),
    ]
    for system, result in rows.items():
        cells = [system.replace("|", "\\|")]
        for metric in METRICS:
            cells += [f"{result.micro.get(metric):.3f}", f"{result.macro.get(metric):.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
