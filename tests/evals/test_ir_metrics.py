"""IR metrics and benchmark loaders, on tiny hand-written fixtures with hand-computed values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evals.ir_metrics import (
    EvalResult,
    FormatError,
    Scores,
    evaluate,
    format_table,
    ndcg_at_k,
    precision_at_k,
    read_qrels,
    read_run,
    reciprocal_rank,
    write_run,
)
from evals.public_benchmark import (
    BenchQuery,
    CorpusDoc,
    condense,
    load_corpus,
    load_judged,
    load_queries,
    query_classes,
)

# ---------------------------------------------------------------------------------------------
# Per-query metrics


def test_perfect_ranking() -> None:
    grades = {"a": 2, "b": 2, "c": 1, "d": 0}
    ranked = ["a", "b", "c", "d"]
    # Best-first by grade, so DCG = IDCG and nDCG = 1.
    assert ndcg_at_k(ranked, grades) == pytest.approx(1.0)
    # "a" (grade 2) is first: 1/1.
    assert reciprocal_rank(ranked, grades) == 1.0
    # Grade >= 2 in the top 5: a, b -> 2/5 (c has grade 1, d grade 0, the 5th place is empty).
    assert precision_at_k(ranked, grades) == pytest.approx(0.4)


def test_graded_ndcg_by_hand() -> None:
    grades = {"a": 2, "b": 1, "c": 2}
    ranked = ["x", "b", "a"]  # x is unjudged: gain 0
    # Gains are 2**grade - 1: grade 2 -> 3, grade 1 -> 1.
    # DCG  = 0/log2(2) + 1/log2(3) + 3/log2(4) = 0 + 0.6309298 + 1.5 = 2.1309298
    # IDCG = 3/log2(2) + 3/log2(3) + 1/log2(4) = 3 + 1.8927893 + 0.5 = 5.3927893
    # nDCG = 2.1309298 / 5.3927893 = 0.3951443
    expected = (1 / math.log2(3) + 3 / 2) / (3 + 3 / math.log2(3) + 1 / 2)
    assert expected == pytest.approx(0.3951443, abs=1e-7)
    assert ndcg_at_k(ranked, grades) == pytest.approx(expected)
    # First grade-2 document is "a" at rank 3 ("b" is only grade 1): 1/3.
    assert reciprocal_rank(ranked, grades) == pytest.approx(1 / 3)
    # Only "a" in the top 5 has grade >= 2: 1/5.
    assert precision_at_k(ranked, grades) == pytest.approx(0.2)


def test_cutoff_and_ideal_from_all_judged() -> None:
    grades = {"a": 2, "b": 1, "c": 2}
    # k=2 sees only x and b: DCG@2 = 1/log2(3); IDCG@2 = 3 + 3/log2(3) (the two grade-2 docs).
    expected = (1 / math.log2(3)) / (3 + 3 / math.log2(3))
    assert ndcg_at_k(["x", "b", "a"], grades, k=2) == pytest.approx(expected)
    # The ideal counts "c" although the run never returned it: DCG = 3, IDCG@10 = 5.3927893.
    assert ndcg_at_k(["a"], grades) == pytest.approx(3 / (3 + 3 / math.log2(3) + 0.5))


def test_no_relevant_documents_scores_zero() -> None:
    assert ndcg_at_k(["a", "b"], {"a": 0}) == 0.0
    assert reciprocal_rank(["a", "b"], {"a": 1}) == 0.0
    assert precision_at_k([], {"a": 2}) == 0.0


def test_metrics_refuse_duplicates_and_bad_cutoff() -> None:
    with pytest.raises(ValueError, match="twice"):
        ndcg_at_k(["a", "a"], {"a": 2})
    with pytest.raises(ValueError, match="at least 1"):
        precision_at_k(["a"], {"a": 2}, k=0)


# ---------------------------------------------------------------------------------------------
# Aggregation


def test_micro_and_macro_differ() -> None:
    qrels = {q: {"d1": 2} for q in ("q1", "q2", "q3", "q4")}
    classes = {"q1": "config", "q2": "config", "q3": "config", "q4": "power"}
    # q1..q3 put d1 first: nDCG 1, RR 1, P@5 1/5. q4 is missing from the run: all 0.
    run = {q: [("d1", 1.0), ("d2", 0.5)] for q in ("q1", "q2", "q3")}
    result = evaluate(run, qrels, classes)
    # micro: nDCG (1+1+1+0)/4 = 0.75, MRR 0.75, P@5 (0.2*3 + 0)/4 = 0.15
    assert result.micro.model_dump() == pytest.approx(
        {"ndcg_at_10": 0.75, "mrr": 0.75, "p_at_5": 0.15}
    )
    # macro: config (1, 1, 0.2) and power (0, 0, 0) -> nDCG 0.5, MRR 0.5, P@5 0.1
    assert result.macro.model_dump() == pytest.approx(
        {"ndcg_at_10": 0.5, "mrr": 0.5, "p_at_5": 0.1}
    )
    assert result.per_class["power"] == Scores(ndcg_at_10=0.0, mrr=0.0, p_at_5=0.0)
    assert set(result.per_query) == {"q1", "q2", "q3", "q4"}


def test_query_without_relevant_docs_is_counted() -> None:
    qrels = {"q1": {"d1": 2}, "q2": {"d1": 0}}  # q2 has no relevant document
    run = {"q1": [("d1", 1.0)], "q2": [("d1", 1.0)]}
    result = evaluate(run, qrels, {"q1": "a", "q2": "a"})
    # q1 is perfect (1), q2 scores 0 and still counts: micro nDCG = (1 + 0)/2 = 0.5
    assert result.per_query["q2"] == Scores(ndcg_at_10=0.0, mrr=0.0, p_at_5=0.0)
    assert result.micro.ndcg_at_10 == 0.5
    assert result.micro.mrr == 0.5


def test_evaluate_refuses_run_for_unknown_queries() -> None:
    with pytest.raises(ValueError, match="outside the query set"):
        evaluate({"zz": [("d1", 1.0)]}, {}, {"q1": "a"})


def test_format_table() -> None:
    scores = Scores(ndcg_at_10=0.43019, mrr=0.5, p_at_5=0.2)
    result = EvalResult(micro=scores, macro=scores, per_class={}, per_query={})
    assert format_table({"bm25|title": result}) == (
        "| system | nDCG@10 micro | nDCG@10 macro | MRR micro | MRR macro "
        "| P@5 micro | P@5 macro |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
        "| bm25\\|title | 0.430 | 0.430 | 0.500 | 0.500 | 0.200 | 0.200 |\n"
    )


# ---------------------------------------------------------------------------------------------
# Files


def test_write_run_read_run_round_trip(tmp_path: Path) -> None:
    run = {
        "q1": [("d3", 2.5), ("d1", 0.1), ("d2", 0.1)],  # a tie keeps the given order
        "q2": [("d9", 1e-05), ("d8", -3.0)],
    }
    path = tmp_path / "run.txt"
    write_run(path, run, "bm25")
    assert path.read_text(encoding="utf-8").splitlines() == [
        "q1 Q0 d3 1 2.5 bm25",
        "q1 Q0 d1 2 0.1 bm25",
        "q1 Q0 d2 3 0.1 bm25",
        "q2 Q0 d9 1 1e-05 bm25",
        "q2 Q0 d8 2 -3.0 bm25",
    ]
    assert read_run(path) == run


def test_read_run_orders_by_rank(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    path.write_text("q1 Q0 b 2 0.5 t\n\nq1 Q0 a 1 0.9 t\n", encoding="utf-8")
    assert read_run(path) == {"q1": [("a", 0.9), ("b", 0.5)]}


def test_write_run_refuses_rising_scores_and_bad_tokens(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="best first"):
        write_run(tmp_path / "r.txt", {"q1": [("a", 0.1), ("b", 0.2)]}, "t")
    with pytest.raises(ValueError, match="whitespace"):
        write_run(tmp_path / "r.txt", {"q1": [("a b", 0.1)]}, "t")
    with pytest.raises(ValueError, match="twice"):
        write_run(tmp_path / "r.txt", {"q1": [("a", 0.2), ("a", 0.1)]}, "t")


def test_read_qrels(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt"
    path.write_text("q1 0 d1 2\nq1 0 d2 1\n\nq2 0 d1 0\n", encoding="utf-8")
    assert read_qrels(path) == {"q1": {"d1": 2, "d2": 1}, "q2": {"d1": 0}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q1 0 d1 2\nq1 0 d2\n", r"qrels\.txt:2: expected 4 fields"),
        ("q1 0 d1 2\n\nq1 0 d2 high\n", r"qrels\.txt:3: grade is not an integer"),
        ("q1 0 d1 2\nq1 0 d1 1\n", r"qrels\.txt:2: document 'd1' judged twice"),
    ],
)
def test_malformed_qrels_line_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "qrels.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FormatError, match=message) as caught:
        read_qrels(path)
    assert caught.value.path == str(path)


def test_malformed_run_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    path.write_text("q1 Q0 a 1 0.9 t\nq1 Q0 b 2 lots t\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"run\.txt:2: score is not a number"):
        read_run(path)


# ---------------------------------------------------------------------------------------------
# Benchmark protocol


def test_condense_drops_own_excluded_and_unjudged() -> None:
    ranking = [("q1", 9.0), ("x", 8.0), ("dup", 7.0), ("unjudged", 6.0), ("a", 5.0), ("b", 4.0)]
    judged = {"q1", "x", "dup", "a", "b"}
    # q1 is the query itself, dup describes the same event, unjudged has no label.
    assert condense("q1", ranking, {"dup"}, judged) == [("x", 8.0), ("a", 5.0), ("b", 4.0)]


def test_load_corpus_tolerates_nulls(tmp_path: Path) -> None:
    rows = [
        {"id": "c1", "title": "Cache stampede", "summary": "Hit rate fell.", "body": None}
        | {"company": "Acme", "product": None, "year": "2019", "url": "u", "sources": []},
        {"id": "c2", "title": None, "summary": "s", "body": "b", "company": "Initech"}
        | {"product": "queue", "year": None, "date": None},
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert load_corpus(path) == [
        CorpusDoc(
            id="c1",
            title="Cache stampede",
            summary="Hit rate fell.",
            body="",
            company="Acme",
            product=None,
            year=2019,
        ),
        CorpusDoc(id="c2", title="", summary="s", body="b", company="Initech", product="queue"),
    ]


def test_load_queries_and_judged(tmp_path: Path) -> None:
    row: dict[str, object] = {"qid": "c1", "class": "internal/bugs/config", "query": "Logins fail"}
    row |= {"query_title_summary": "Bad flag broke logins", "exclude": ["c7"]}
    path = tmp_path / "queries.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    queries = load_queries(path)
    assert queries == [BenchQuery.model_validate(row)]
    assert queries[0].exclude == ("c7",)
    assert query_classes(queries) == {"c1": "internal/bugs/config"}
    judged = tmp_path / "judged.txt"
    judged.write_text("c1\nc7\n\n", encoding="utf-8")
    assert load_judged(judged) == {"c1", "c7"}


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        ("{not json", r"queries\.jsonl:3: not JSON"),
        ("[1, 2]", r"queries\.jsonl:3: expected a JSON object"),
        ('{"qid": "c2", "class": "k", "query": "q"}', r"queries\.jsonl:3: query_title_summary"),
    ],
)
def test_malformed_query_line_is_named(tmp_path: Path, second_line: str, message: str) -> None:
    first: dict[str, object] = {
        "qid": "c1",
        "class": "k",
        "query": "q",
        "query_title_summary": "t",
        "exclude": [],
    }
    path = tmp_path / "queries.jsonl"
    path.write_text(json.dumps(first) + "\n\n" + second_line + "\n", encoding="utf-8")
    with pytest.raises(FormatError, match=message):
        load_queries(path)


def test_repeated_corpus_id_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "c1"}\n{"id": "c2"}\n{"id": "c1"}\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"corpus\.jsonl:3: .*first on line 1"):
        load_corpus(path)
