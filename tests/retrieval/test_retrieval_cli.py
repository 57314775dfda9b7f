"""`rca similar`, `rca index ...` and `rca eval retrieval` end to end, with the fake embedder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evals.ir_metrics import read_run
from tests.support import run

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
BENCH = Path(__file__).parents[1] / "fixtures" / "ir"


@pytest.fixture(autouse=True)
def _fake_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCA_RETRIEVAL__EMBEDDER", "fake")


@pytest.fixture
def data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    data = tmp_path / "data"
    code, out, err = run(data, "import", str(EXAMPLES), capsys=capsys)
    assert code == 0, err
    assert "indexed 31 postmortems" in out
    return data


def test_similar_by_text_and_by_incident(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        data_dir,
        "similar",
        "--text",
        "TLS certificate expired, clients fail the handshake",
        "--json",
        capsys=capsys,
    )
    assert code == 0
    result = json.loads(out)
    assert result["mode"] == "hybrid" and not result["degraded"]
    assert "certificate" in result["hits"][0]["title"].lower()
    assert result["hits"][0]["why"] and result["hits"][0]["sections"]

    incident = EXAMPLES / "incidents" / "inc-2026-01-checkout-db-pool.json"
    code, out, _ = run(data_dir, "similar", str(incident), "-k", "3", capsys=capsys)
    assert code == 0
    assert out.startswith("1. pm-") and "\n3. pm-" in out and "\n4. " not in out
    assert "why: " in out


def test_similar_refuses_bad_queries(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in (
        (["--text", "the of and"], "no searchable words"),
        ([], "either an incident file or --text"),
        (["--text", "dns", "--mode", "fuzzy"], "--mode must be"),
        (["--text", "dns", "--since", "2024-13-01"], "bad filter"),
        ([str(EXAMPLES / "postmortems" / "pm-2022-03-edge-config-push.md")], "holds no incident"),
    ):
        code, _, err = run(data_dir, "similar", *args, capsys=capsys)
        assert code == 1, args
        assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_index_commands_and_a_lost_index(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(data_dir, "index", "status", capsys=capsys)
    assert code == 0 and "0 revisions waiting" in out
    code, out, _ = run(data_dir, "index", "check", capsys=capsys)
    assert code == 0 and "missing" not in out

    shutil.rmtree(data_dir / "chroma")
    code, out, err = run(data_dir, "similar", "--text", "disk full on the log nodes", capsys=capsys)
    assert code == 0 and out.startswith("1. pm-")  # lexical results still come back
    assert "lexical results only" in err and "rca index rebuild" in err

    code, out, _ = run(data_dir, "index", "rebuild", capsys=capsys)
    assert code == 0 and "31 postmortems" in out
    code, out, err = run(data_dir, "similar", "--text", "disk full on the log nodes", capsys=capsys)
    assert code == 0 and "lexical results only" not in err


def _bench_args(*extra: str) -> list[str]:
    return [
        "eval",
        "retrieval",
        "--corpus",
        str(BENCH / "corpus.jsonl"),
        "--queries",
        str(BENCH / "queries.jsonl"),
        "--qrels",
        str(BENCH / "qrels.txt"),
        "--judged",
        str(BENCH / "judged_docs.txt"),
        *extra,
    ]


def test_eval_retrieval_scores_three_systems_and_writes_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "untouched"
    run_out = tmp_path / "run.txt"
    code, out, err = run(data, *_bench_args("--run-out", str(run_out)), capsys=capsys)
    assert code == 0, err
    assert "8 documents" in out and "3 queries" in out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert {"bm25", "dense", "hybrid"} <= set(rows)
    assert not (data / "rca.db").exists()  # the benchmark ran in a temporary store

    for path, tag in (
        (run_out, "rca-hybrid"),
        (tmp_path / "run.bm25.txt", "rca-bm25"),
        (tmp_path / "run.dense.txt", "rca-dense"),
    ):
        assert path.read_text().split("\n", 1)[0].endswith(tag)
        ranking = read_run(path)
        assert set(ranking) == {"d1", "d3", "d5"}
        for qid, docs in ranking.items():
            ids = [docid for docid, _ in docs]
            assert qid not in ids  # the query's own write-up is dropped
            assert "d7" not in ids  # unjudged (and excluded for d3)
    bm25 = read_run(tmp_path / "run.bm25.txt")
    # "no space left on device" shares only the disk-full write-ups' words.
    assert bm25["d5"][0][0] == "d6"
    assert bm25["d3"][0][0] == "d4"


def test_eval_retrieval_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "queries.jsonl"
    lines = (BENCH / "queries.jsonl").read_text().splitlines()
    broken.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    args = _bench_args()
    args[args.index("--queries") + 1] = str(broken)
    code, _, err = run(tmp_path / "d", *args, capsys=capsys)
    assert code == 1 and f"{broken}:2: not JSON" in err and err.count("\n") == 1

    empty = tmp_path / "corpus.jsonl"
    empty.write_text("\n")
    args = _bench_args()
    args[args.index("--corpus") + 1] = str(empty)
    code, _, err = run(tmp_path / "d", *args, capsys=capsys)
    assert code == 1 and "the corpus is empty" in err

    code, _, err = run(tmp_path / "d", *_bench_args("--system", "tfidf"), capsys=capsys)
    assert code == 1 and "--system must be" in err

    code, _, err = run(
        tmp_path / "d", *_bench_args("--run-out", "/nonexistent/x.txt"), capsys=capsys
    )
    assert code == 1 and "does not exist" in err
