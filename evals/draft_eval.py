"""`rca eval run`: draft every case's incident and score the draft against its reviewed postmortem.

History for each case is every *other* case's reviewed postmortem (plus an optional extra
corpus of postmortems), never the case's own: one scratch store and index hold them all, and
the case's own postmortem is excluded from its search. Each system (a model, or the
retrieval-only baseline) writes `OUT/<system>/results.jsonl` (one row per case: scores, model,
prompt version, retrieval settings, evaluator versions, tokens, cost, latency),
`OUT/<system>/drafts/<case>.json` and `OUT/<system>/summary.json` (mean and 95% bootstrap
interval per metric).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from evals import draft_scores as dm
from rca.config import Settings
from rca.domain import Draft, Incident, Postmortem
from rca.drafting import Drafter
from rca.errors import InvalidInput, Problem
from rca.llm import LlmClient, LlmConfig, ScriptedModel, client_from_settings, register_provider
from rca.redaction import Redactor
from rca.store import Store
from rca.testing import rules_analyst
from retrieval.history import SearchHistory, drafting_options
from retrieval.service import Retrieval, open_retrieval

BASELINE = "baseline"
RULES = "rules"
"""The ablation: the drafting pipeline with code choosing the top-ranked candidates."""
Progress = Callable[[str], None]


class EvalCase(BaseModel):
    """One eval case: an incident and the postmortem its reviewers wrote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    incident: Incident
    reviewed: Postmortem


def load_cases(directory: Path) -> list[EvalCase]:
    """Every `*.json` case in `directory`, sorted by id; every bad file is reported at once."""
    files = sorted(directory.glob("*.json"))
    if not files:
        raise InvalidInput([Problem("no *.json eval cases", str(directory))])
    cases: list[EvalCase] = []
    problems: list[Problem] = []
    for path in files:
        try:
            cases.append(EvalCase.model_validate_json(path.read_text(encoding="utf-8")))
        except (ValidationError, ValueError, UnicodeDecodeError) as err:
            problems.append(Problem(f"not an eval case: {str(err).splitlines()[0]}", str(path)))
    if problems:
        raise InvalidInput(problems)
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise InvalidInput([Problem("duplicate case ids", str(directory))])
    return sorted(cases, key=lambda c: c.id)


def system_slug(system: str) -> str:
    """A directory name for a system (`local/qwen2.5-coder-0.5b` → `local_qwen2.5-coder-0.5b`)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", system).strip("_") or "system"


@dataclass
class SystemRun:
    """What one system's run produced."""

    system: str
    directory: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def run_eval(
    cases: Sequence[EvalCase],
    systems: Sequence[str],
    settings: Settings,
    out: Path,
    extra_corpus: Sequence[Postmortem] = (),
    judge: str | None = None,
    progress: Progress | None = None,
) -> list[SystemRun]:
    """Draft and score every case with every system; write the results under `out`."""
    say = progress or (lambda _m: None)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rca-eval-") as scratch:
        work = settings.model_copy(update={"data_dir": Path(scratch), "database_url": None})
        store = Store.open(work)
        retrieval = open_retrieval(work, store)
        try:
            history = [c.reviewed for c in cases] + list(extra_corpus)
            store.save(history, source="eval")
            retrieval.indexer.sync()
            say(f"history: {len(history)} postmortems indexed")
            runs = []
            for system in systems:
                runs.append(_run_system(cases, system, settings, retrieval, out, judge, say))
            return runs
        finally:
            retrieval.close()
            store.close()


def _run_system(
    cases: Sequence[EvalCase],
    system: str,
    settings: Settings,
    retrieval: Retrieval,
    out: Path,
    judge: str | None,
    say: Progress,
) -> SystemRun:
    directory = out / system_slug(system)
    (directory / "drafts").mkdir(parents=True, exist_ok=True)
    client: LlmClient | None = None
    if system == RULES:
        register_provider(RULES, ScriptedModel(reply=rules_analyst))
        client = LlmClient(LlmConfig(model=f"{RULES}/top-ranked", max_retries=0), Redactor())
    elif system != BASELINE:
        llm = settings.llm.model_copy(update={"model": system, "fallbacks": []})
        client = client_from_settings(settings.model_copy(update={"llm": llm}))
    judge_client = _judge_client(settings, judge)
    run = SystemRun(system, directory)
    options = drafting_options(
        settings.model_copy(update={"llm": settings.llm.model_copy(update={"model": system})})
    )
    try:
        for number, case in enumerate(cases, start=1):
            say(f"[{system}] {number}/{len(cases)} {case.id}")
            drafter = Drafter(
                client,
                SearchHistory(retrieval.search, exclude={case.reviewed.id}),
                Redactor(ip_addresses=settings.redaction.ip_addresses),
                options=options,
                embedder=retrieval.embedder,
            )
            started = time.perf_counter()
            draft = drafter.draft(case.incident, draft_id=f"eval-{case.id}")
            wall = time.perf_counter() - started
            (directory / "drafts" / f"{case.id}.json").write_text(
                draft.model_dump_json(indent=2), encoding="utf-8"
            )
            run.rows.append(
                _row(case, system, draft, wall, retrieval, options.similar_k, judge_client)
            )
    finally:
        if client is not None:
            client.close()
        if judge_client is not None:
            judge_client.close()
    with (directory / "results.jsonl").open("w", encoding="utf-8") as handle:
        for row in run.rows:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
    run.summary = summarize(run.rows, system)
    (directory / "summary.json").write_text(
        json.dumps(run.summary, indent=2, sort_keys=True), encoding="utf-8"
    )
    return run


def _judge_client(settings: Settings, judge: str | None) -> LlmClient | None:
    if judge is None:
        return None
    llm = settings.llm.model_copy(update={"model": judge, "fallbacks": []})
    return client_from_settings(settings.model_copy(update={"llm": llm}))


def _row(
    case: EvalCase,
    system: str,
    draft: Draft,
    wall_s: float,
    retrieval: Retrieval,
    k: int,
    judge: LlmClient | None,
) -> dict[str, Any]:
    known = case.incident.evidence_ids() | set(draft.similar_postmortem_ids)
    scores = dm.score_case(
        dm.View.of_draft(draft),
        dm.View.of_postmortem(case.reviewed),
        retrieval.embedder,
        known,
    )
    if judge is not None:
        scores["root_cause.judge"] = judge_root_cause(judge, draft, case.reviewed)
    usage = draft.usage
    return {
        "case": case.id,
        "system": system,
        "model": draft.model,
        "prompt_version": draft.prompt_version,
        "retrieval": {
            "k": k,
            "mode": "hybrid",
            "embedder": retrieval.embedder.model_id,
            "similar": draft.similar_postmortem_ids,
            "degraded": draft.degraded,
        },
        "evaluators": dict(dm.EVALUATORS),
        "scores": scores,
        "suggestions": len(draft.suggestions),
        "notes": len(draft.notes),
        "calls": len(usage.calls),
        "failed_calls": sum(not c.ok for c in usage.calls),
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cost_usd": round(usage.cost_usd, 6),
        "latency_s": round(wall_s, 3),
    }


JUDGE_LEVELS = (0, 35, 65, 100)
_JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "enum": list(JUDGE_LEVELS)},
        "reason": {"type": "string", "maxLength": 300},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}


def judge_root_cause(judge: LlmClient, draft: Draft, reviewed: Postmortem) -> float | None:
    """A judge model's graded verdict on the drafted root causes, scaled to 0-1: 100 the
    reviewed cause, 65 one causal step short, 35 right area but wrong mechanism, 0 wrong."""
    view = dm.View.of_draft(draft)
    truth = dm.View.of_postmortem(reviewed)
    if not truth.root_causes:
        return None
    drafted = "\n".join(f"- {c}" for c in view.root_causes) or "- (none)"
    expected = "\n".join(f"- {c}" for c in truth.root_causes)
    messages = [
        {
            "role": "system",
            "content": "You grade incident analyses. Compare the drafted root causes with the "
            "reviewed ones and answer with JSON: score 100 if the draft names the reviewed "
            "cause, 65 if it stops one causal step short, 35 if it is in the right area but "
            "names the wrong mechanism, 0 if it is wrong or missing.",
        },
        {
            "role": "user",
            "content": f"Reviewed root causes:\n{expected}\n\nDrafted root causes:\n{drafted}",
        },
    ]
    try:
        answer = judge.complete(messages, max_tokens=200, json_schema=_JUDGE_SCHEMA)
        score = int(json.loads(answer.text)["score"])
    except Exception:  # a judge failure leaves the metric out, it does not fail the run
        return None
    return score / 100 if score in JUDGE_LEVELS else None


def summarize(rows: Sequence[dict[str, Any]], system: str) -> dict[str, Any]:
    """Mean and 95% bootstrap interval of every metric, plus cost and latency."""
    metrics: dict[str, Any] = {}
    names = sorted({name for row in rows for name in row["scores"]})
    for name in names:
        values = [row["scores"].get(name) for row in rows]
        present = [float(v) for v in values if v is not None]
        if not present:
            continue
        mean, low, high = dm.bootstrap_ci(present)
        metrics[name] = {"mean": mean, "low": low, "high": high, "n": len(present)}
    for name in ("latency_s", "prompt_tokens", "completion_tokens", "cost_usd"):
        present = [float(row[name]) for row in rows]
        if present:
            mean, low, high = dm.bootstrap_ci(present)
            metrics[name] = {"mean": mean, "low": low, "high": high, "n": len(present)}
    first = rows[0] if rows else {}
    return {
        "system": system,
        "cases": len(rows),
        "model": first.get("model"),
        "prompt_version": first.get("prompt_version"),
        "retrieval": {k: v for k, v in first.get("retrieval", {}).items() if k != "similar"},
        "evaluators": first.get("evaluators", {}),
        "metrics": metrics,
    }


def read_run(directory: Path) -> list[dict[str, Any]]:
    """The rows of a system's run directory."""
    path = directory / "results.jsonl"
    if not path.is_file():
        raise InvalidInput([Problem("no results.jsonl: not a run directory", str(directory))])
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InvalidInput([Problem(f"bad JSON: {err.msg}", str(path), number)]) from None
    return rows
