"""Context assembly: priorities under a tight budget, time order, visible cuts, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest

from rca.domain import Incident, Postmortem
from rca.drafting.evidence import (
    assemble_evidence,
    evidence_lines,
    postmortem_digest,
    signature,
    truncate,
)
from rca.formats.importer import load_file
from rca.llm.tokens import tiktoken_counter

EXAMPLES = Path(__file__).parents[2] / "examples"
count = tiktoken_counter()


def _incident() -> Incident:
    [doc] = load_file(EXAMPLES / "incidents" / "inc-2026-01-checkout-db-pool.json", 5 << 20)
    assert isinstance(doc, Incident)
    return doc


def test_everything_fits_in_a_large_budget_in_time_order() -> None:
    incident = _incident()
    block = assemble_evidence(incident, budget=100_000, count=count)
    assert set(block.included) == incident.evidence_ids() and not block.omitted
    times = [line.split(" ")[1] + line.split(" ")[2] for line in block.text.splitlines()]
    assert times == sorted(times)
    assert block.tokens == count(block.text)


def test_a_tight_budget_keeps_alerts_and_changes_and_says_what_it_left_out() -> None:
    incident = _incident()
    full = assemble_evidence(incident, budget=100_000, count=count)
    budget = full.tokens // 3
    block = assemble_evidence(incident, budget=budget, count=count)
    assert block.tokens <= budget
    assert block.omitted and "more evidence items left out" in block.text
    for oid in block.omitted:
        assert oid in block.text.splitlines()[-1]
    priorities = {line.id: line.priority for line in evidence_lines(incident)}
    kept = max(priorities[i] for i in block.included)
    dropped = min(priorities[i] for i in block.omitted)
    assert kept <= dropped  # nothing was dropped while something less telling was kept
    assert {a.id for a in incident.alerts} <= set(block.included)
    assert assemble_evidence(incident, budget=budget, count=count) == block  # deterministic


def test_repeats_of_one_error_rank_below_its_first_occurrence() -> None:
    assert signature("timeout after 5000 ms on conn 7f3a9c2b") == signature(
        "Timeout after 30000 ms on conn 00aa11bb"
    )
    data = _incident().model_dump(mode="json")
    data["logs"] = [
        {
            "id": f"log-{n}",
            "at": f"2026-01-15T14:0{n}:00Z",
            "text": f"ERROR pool timeout after {n}00 ms",
        }
        for n in range(1, 5)
    ]
    incident = Incident.model_validate(data)
    priorities = {line.id: line.priority for line in evidence_lines(incident)}
    assert priorities["log-1"] == 2
    assert {priorities[f"log-{n}"] for n in range(2, 5)} == {5}


def test_long_lines_are_cut_visibly() -> None:
    text = "word " * 500
    cut, was_cut = truncate(text, 50, count)
    assert was_cut and cut.endswith("… [cut]") and count(cut) <= 50
    assert truncate("short line", 50, count) == ("short line", False)
    data = _incident().model_dump(mode="json")
    data["logs"][0]["text"] = "stack frame " * 400
    block = assemble_evidence(Incident.model_validate(data), 100_000, count, max_line_tokens=60)
    assert data["logs"][0]["id"] in block.truncated and "… [cut]" in block.text


@pytest.mark.parametrize("budget", [40, 120])
def test_postmortem_digest_fits(budget: int) -> None:
    [pm] = load_file(EXAMPLES / "postmortems" / "pm-2023-06-internal-dns-outage.md", 5 << 20)
    assert isinstance(pm, Postmortem)
    digest = postmortem_digest(pm, budget, count)
    assert count(digest) <= budget and digest.startswith(pm.id)
    full = postmortem_digest(pm, 100_000, count)
    assert "Root cause:" in full and "Action (" in full
