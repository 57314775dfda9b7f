"""Draft latency, stage by stage: redaction, retrieval, prompt assembly, model, validation.

    .venv/bin/python bench/draft.py                 # the scripted fake model: our code only
    .venv/bin/python bench/draft.py --local         # also the embedded local model (slow)

A scratch store holds the example postmortems (indexed with the real embedding model); each
example incident is drafted `--repeats` times with the fake model (a scripted analyst behind
litellm's custom-provider path, so the model stage is litellm plus our adapter) and, with
`--local`, once with the embedded model. Numbers are medians over incidents and repeats.

Baselines measured in the same run:
- fake: the retrieval-only baseline drafter (no model) on the same incidents -- the ratio says
  what the model pipeline's own code costs over the simplest drafter;
- local: one raw llama.cpp chat completion of the first question's prompt (no schema, no
  prompt cache, 64 tokens) -- the ratio says what a whole draft costs in units of one call.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import median, peak_rss_mib, scratch_settings
from prompts import render_question
from rca.config import Settings
from rca.domain import Incident
from rca.drafting import Drafter, DraftingOptions
from rca.drafting.context import build_context
from rca.drafting.findings import find
from rca.formats.importer import import_paths
from rca.llm import LlmClient, LlmConfig, LocalModel, ScriptedModel, register_provider
from rca.redaction import Redactor, redact_incident
from rca.store import Store
from rca.testing import fake_analyst
from retrieval.history import SearchHistory
from retrieval.service import Retrieval, open_retrieval

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("redaction", "retrieval", "prompt", "model", "validation")


def load_incidents(limit: int) -> list[Incident]:
    files = sorted((ROOT / "examples" / "incidents").glob("*.json"))[:limit]
    return [Incident.model_validate_json(f.read_text()) for f in files]


def print_table(title: str, rows: list[dict[str, float]]) -> None:
    print(f"\n{title} ({len(rows)} drafts), median seconds")
    for stage in (*STAGES, "non-model", "total"):
        values = [row.get(stage, 0.0) for row in rows]
        print(f"  {stage:<11} {median(values) * 1000:10.1f} ms")


def row_of(stages: dict[str, float]) -> dict[str, float]:
    row = {s: stages.get(s, 0.0) for s in STAGES}
    row["non-model"] = sum(v for k, v in row.items() if k != "model")
    row["total"] = sum(row[s] for s in STAGES)
    return row


def run_fake(
    retrieval: Retrieval, incidents: list[Incident], repeats: int
) -> tuple[list[dict[str, float]], list[float]]:
    register_provider("fake", ScriptedModel(reply=fake_analyst))
    client = LlmClient(LlmConfig(model="fake/analyst"), Redactor())
    history = SearchHistory(retrieval.search)
    drafter = Drafter(client, history, Redactor(), embedder=retrieval.embedder)
    baseline = Drafter(None, history, Redactor(), embedder=retrieval.embedder)
    rows: list[dict[str, float]] = []
    base_totals: list[float] = []
    for incident in incidents:  # warm-up: BM25 build, first embedding, template compile
        drafter.draft(incident)
        baseline.draft(incident)
    for _ in range(repeats):
        for incident in incidents:
            started = time.perf_counter()
            baseline.draft(incident)
            base_totals.append(time.perf_counter() - started)
            rows.append(row_of(drafter.draft(incident).usage.stages_s))
    return rows, base_totals


def run_local(
    settings: Settings, retrieval: Retrieval, incidents: list[Incident], model: str
) -> tuple[list[dict[str, float]], list[float], list[str]]:
    local = LocalModel(settings.data_dir, n_ctx=settings.llm.context_tokens)
    client = LlmClient(LlmConfig(model=model), Redactor(), local)
    drafter = Drafter(
        client,
        SearchHistory(retrieval.search),
        Redactor(),
        options=DraftingOptions(concurrency=1, own_words=False),  # as drafting_options() sets
        embedder=retrieval.embedder,
    )
    rows: list[dict[str, float]] = []
    raw: list[float] = []
    summaries: list[str] = []
    name = model.split("/", 1)[1]
    for incident in incidents:
        draft = drafter.draft(incident)
        rows.append(row_of(draft.usage.stages_s))
        summaries.append(
            f"{incident.id}: {sum(draft.usage.stages_s.values()):.1f} s, "
            f"{len(draft.usage.calls)} calls, {draft.usage.prompt_tokens} prompt + "
            f"{draft.usage.completion_tokens} completion tokens, "
            f"{len(draft.suggestions)} suggestions, {len(draft.notes)} notes"
        )
        # Baseline: one raw call with the first question's prompt, cache cleared.
        llama, lock = local.llama(name)
        messages = _first_prompt(drafter, incident)
        with lock:
            llama.reset()
            started = time.perf_counter()
            llama.create_chat_completion(messages=messages, max_tokens=64, temperature=0.0)
            raw.append(time.perf_counter() - started)
    local.close()
    return rows, raw, summaries


def _first_prompt(drafter: Drafter, incident: Incident) -> list[dict[str, str]]:
    """The messages of the first question, as the drafter builds them (without history)."""
    redacted, table = redact_incident(incident, drafter.redactor)
    ctx = build_context(redacted, table, find(redacted), [], drafter.options, drafter.count)
    return render_question("draft", "trigger", **ctx.variables).messages()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=6, help="example incidents to draft")
    parser.add_argument("--repeats", type=int, default=5, help="fake-model rounds")
    parser.add_argument("--local", action="store_true", help="also draft with the local model")
    parser.add_argument("--model", default="local/qwen2.5-coder-0.5b", help="local model")
    args = parser.parse_args()
    incidents = load_incidents(args.incidents)
    with tempfile.TemporaryDirectory(prefix="rca-bench-draft-") as tmp:
        settings = scratch_settings(Path(tmp))
        store = Store.open(settings)
        report = import_paths(
            store, [ROOT / "examples" / "postmortems"], settings.imports.max_file_bytes
        )
        retrieval = open_retrieval(settings, store)
        synced = retrieval.indexer.sync()
        print(f"history: {len(report.saved)} postmortems, {synced.chunks} chunks indexed")
        rows, base = run_fake(retrieval, incidents, args.repeats)
        print_table("fake model (scripted analyst through litellm)", rows)
        non_model = median([r["non-model"] for r in rows])
        print(
            f"  baseline drafter (no model) total {median(base) * 1000:.1f} ms; "
            f"pipeline non-model / baseline = {non_model / median(base):.2f}x"
        )
        if args.local:
            from rca.llm import weights

            spec = weights.spec_for(args.model.split("/", 1)[1])
            weights.pull(spec, settings.data_dir)
            local_rows, raw, summaries = run_local(settings, retrieval, incidents, args.model)
            print_table(f"local model {args.model}", local_rows)
            for line in summaries:
                print(f"  {line}")
            total = median([r["total"] for r in local_rows])
            print(
                f"  one raw call (cold prompt, 64 tokens) {median(raw):.1f} s; "
                f"draft / raw call = {total / median(raw):.1f}x"
            )
        retrieval.close()
        store.close()
    print(f"\npeak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
