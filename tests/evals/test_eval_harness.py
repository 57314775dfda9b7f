"""The draft eval harness end to end on the project's own cases: run, compare, report, and
cases learnt from reviewer decisions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.worker import DraftWorker
from evals.draft_eval import load_cases
from rca.llm import ScriptedModel, register_provider
from rca.store.keys import Role
from rca.testing import fake_analyst
from tests.api.support import running_api
from tests.support import run

ROOT = Path(__file__).parents[2]
OWN_CASES = ROOT / "evals" / "cases"
CASES = ROOT / "tests" / "fixtures" / "evalcases"
"""Three of our own cases (links into `evals/cases`): the harness tests' small, fixed set."""


@pytest.fixture(autouse=True)
def _fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RCA_RETRIEVAL__EMBEDDER", "fake")
    register_provider("fake", ScriptedModel(reply=fake_analyst))
    yield


def test_the_project_cases_load() -> None:
    cases = load_cases(OWN_CASES)
    assert len(cases) >= 3
    assert all(case.reviewed.causal_chain and case.reviewed.root_causes for case in cases)


def test_the_rules_ablation_drafts_with_code_choosing_the_top_ranked_candidates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    code, _stdout, err = run(
        tmp_path / "data", "eval", "run", "--cases", str(CASES), "--rules", "--out", str(out),
        capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in (out / "rules" / "results.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"rules/top-ranked"} and len(rows) == 3
    for row in rows:
        draft = json.loads((out / "rules" / "drafts" / f"{row['case']}.json").read_text())
        causes = [s for s in draft["suggestions"] if s["section"] == "root_cause"]
        # Up to three candidate conditions, quoted; never a past incident's cause.
        assert 1 <= len(causes) <= 3
        assert all("quoted from [" in (c["rationale"] or "") for c in causes)
        assert not any(str(c["content"]).startswith("As in pm-") for c in causes)
        assert row["scores"]["root_cause.best_match"] > 0
    code, _out, err = run(tmp_path / "data", "eval", "run", "--cases", str(CASES), "--out",
                          str(out), capsys=capsys)  # fmt: skip
    assert code != 0 and "--rules" in err


def test_run_compare_and_report_with_the_fake_model_and_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    code, stdout, err = run(
        tmp_path / "data",
        "eval",
        "run",
        "--cases",
        str(CASES),
        "--model",
        "fake/analyst",
        "--baseline",
        "--out",
        str(out),
        capsys=capsys,
    )
    assert code == 0, err
    assert "history: 3 postmortems indexed" in err
    fake_dir, base_dir = out / "fake_analyst", out / "baseline"
    rows = [json.loads(line) for line in (fake_dir / "results.jsonl").read_text().splitlines()]
    assert [r["case"] for r in rows] == ["cert-renewer", "checkout-db-pool", "dns-node-local"]
    for row in rows:
        assert row["model"] == "fake/analyst" and row["prompt_version"] == "draft@5"
        assert row["retrieval"]["k"] == 3 and row["evaluators"]
        # Never the case's own postmortem in its history.
        assert f"pm-case-{row['case']}" not in row["retrieval"]["similar"]
        assert row["scores"]["grounding.cited_ids_exist"] == 1.0
        assert row["calls"] == 8 and row["latency_s"] > 0
    baseline = [json.loads(line) for line in (base_dir / "results.jsonl").read_text().splitlines()]
    assert {r["model"] for r in baseline} == {"baseline"}
    summary = json.loads((fake_dir / "summary.json").read_text())
    metric = summary["metrics"]["summary.rouge_l"]
    assert metric["low"] <= metric["mean"] <= metric["high"] and metric["n"] == 3
    assert "| summary.rouge_l |" in stdout

    code, table, _ = run(
        tmp_path / "data", "eval", "compare", str(base_dir), str(fake_dir), capsys=capsys
    )
    assert code == 0 and "| root_cause.best_match |" in table and "3 cases paired" in table

    report = tmp_path / "report"
    code, _, _ = run(
        tmp_path / "data",
        "eval",
        "report",
        str(base_dir),
        str(fake_dir),
        "--out",
        str(report),
        capsys=capsys,
    )
    assert code == 0
    page = (report / "report.html").read_text()
    assert (
        page.count("<svg") >= 3 and "<script" not in page and "http://" not in page.split("<svg")[0]
    )
    assert "fake/analyst" in (report / "report.md").read_text()


def test_bad_cases_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cases"
    bad.mkdir()
    (bad / "x.json").write_text('{"id": "x"}')
    code, _, err = run(
        tmp_path / "data",
        "eval",
        "run",
        "--cases",
        str(bad),
        "--baseline",
        "--out",
        str(tmp_path / "o"),
        capsys=capsys,
    )
    assert code == 1 and "x.json" in err and err.count("\n") == 1
    code, _, err = run(
        tmp_path / "data",
        "eval",
        "run",
        "--cases",
        str(CASES),
        "--out",
        str(tmp_path / "o"),
        capsys=capsys,
    )
    assert code == 1 and "--model, --baseline or --rules" in err


def test_from_reviews_turns_finalized_drafts_into_cases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api_gen = running_api(tmp_path)
    api = next(api_gen)
    try:
        incident = json.loads(
            (ROOT / "examples/incidents/inc-2026-01-checkout-db-pool.json").read_text()
        )
        api.post("/v1/incidents", json=incident)
        job = api.post(f"/v1/incidents/{incident['id']}/drafts", json={}).json()
        assert DraftWorker(api.services, "test").run_once()
        draft = api.get(f"/v1/drafts/{job['id']}").json()["draft"]
        base = f"/v1/drafts/{job['id']}"
        sections = {s["section"]: s for s in draft["suggestions"]}
        decisions = [
            (sections["summary"]["id"], {"decision": "accept"}),
            (
                sections["root_cause"]["id"],
                {"decision": "edit", "content": "Pool sized from CPU limit"},
            ),
            (sections["impact"]["id"], {"decision": "reject"}),
        ]
        for version, (sid, body) in enumerate(decisions, start=1):
            response = api.post(
                f"{base}/suggestions/{sid}/review",
                Role.REVIEWER,
                json=body,
                headers={"If-Match": f'"{version}"'},
            )
            assert response.status_code == 200, response.text
        final = api.post(f"{base}/finalize", Role.REVIEWER, headers={"If-Match": '"4"'})
        assert final.status_code == 201
    finally:
        api_gen.close()
    out = tmp_path / "learnt"
    code, stdout, err = run(
        tmp_path / "data", "eval", "from-reviews", "--out", str(out), capsys=capsys
    )
    assert code == 0, err
    assert "1 cases from finalized drafts" in stdout
    assert "| root_cause | 0 | 1 | 0 |" in stdout and "| impact | 0 | 0 | 1 |" in stdout
    case = json.loads((out / "cases" / f"{job['id']}.json").read_text())
    assert case["reviewed"]["root_causes"] == ["Pool sized from CPU limit"]
    written = json.loads((out / "drafts" / f"{job['id']}.json").read_text())
    restored = next(s for s in written["suggestions"] if s["id"] == sections["root_cause"]["id"])
    assert restored["content"] == sections["root_cause"]["content"]  # as the model wrote it
    assert load_cases(out / "cases")[0].id == job["id"]


def judged_run(
    tmp_path: Path, system: str, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    """`rca eval run` of the project's cases with one system and the `judge/grader` judge."""
    out = tmp_path / "runs"
    code, _stdout, err = run(
        tmp_path / "data", "eval", "run", "--cases", str(CASES), system,
        "--judge", "judge/grader", "--out", str(out), capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    results = out / system.removeprefix("--") / "results.jsonl"
    return [json.loads(line) for line in results.read_text().splitlines()]


def test_a_judge_grades_root_causes_on_the_four_level_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []

    def grade(messages: list[dict[str, str]]) -> str:
        seen.append(messages[-1]["content"])
        # 65 when the draft names the checkout pool case's mechanism, an off-scale 50 otherwise.
        score = 65 if "pool" in messages[-1]["content"].split("Drafted")[1].lower() else 50
        return json.dumps({"score": score, "reason": "graded"})

    register_provider("judge", ScriptedModel(reply=grade))
    out = tmp_path / "runs"
    rows = {r["case"]: r for r in judged_run(tmp_path, "--rules", capsys)}
    assert len(seen) == 3 and all("Reviewed root causes:" in s for s in seen)
    assert rows["checkout-db-pool"]["scores"]["root_cause.judge"] == 0.65
    # A score off the scale is left out, not counted as a grade.
    assert any(r["scores"]["root_cause.judge"] is None for r in rows.values())
    summary = json.loads((out / "rules" / "summary.json").read_text())
    assert summary["metrics"]["root_cause.judge"]["n"] < 3


def test_a_failing_judge_leaves_the_metric_out_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_provider("judge", ScriptedModel(failures=[ScriptedModel.timeout() for _ in range(20)]))
    rows = judged_run(tmp_path, "--baseline", capsys)
    assert [r["scores"]["root_cause.judge"] for r in rows] == [None, None, None]
