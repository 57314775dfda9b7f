"""Context assembly: priorities under a tight budget, time order, visible cuts, determinism."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rca.domain import Incident, Postmortem
from rca.drafting.evidence import (
    MARKER_RUNS,
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
    marker = block.text.splitlines()[-1]
    assert marker.startswith(f"[… {len(block.omitted)} more evidence items left out for space: ")
    assert block.omitted[0] in marker and block.omitted[-1] in marker  # named, as stretches
    priorities = {line.id: line.priority for line in evidence_lines(incident)}
    kept = max(priorities[i] for i in block.included)
    dropped = min(priorities[i] for i in block.omitted)
    assert kept <= dropped  # nothing was dropped while something less telling was kept
    assert {a.id for a in incident.alerts} <= set(block.included)
    assert assemble_evidence(incident, budget=budget, count=count) == block  # deterministic


def _flooded(lines: int) -> Incident:
    """An alert amid `lines` routine log lines, a line a second, and one error."""
    start = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    logs = [
        {
            "id": f"l{n}",
            "at": (start + timedelta(seconds=n)).isoformat(),
            "text": f"INFO GET /v1/photos 200 in {40 + n % 17}ms req={n:05x}",
        }
        for n in range(1, lines + 1)
    ]
    logs[-10]["text"] = "ERROR thumbnail write failed: no space left on device"
    at = (start + timedelta(seconds=lines // 2)).isoformat()
    alert = {"id": "a1", "at": at, "name": "PhotoApi5xxHigh", "text": "photo-api 5xx 31% > 5%"}
    return Incident.model_validate(
        {"id": "inc-flood", "title": "Uploads failing", "severity": "SEV2", "started_at": at}
        | {"alerts": [alert], "logs": logs}
    )


def test_thousands_of_lines_fill_the_budget_alert_and_error_first_with_a_bounded_marker() -> None:
    block = assemble_evidence(_flooded(5_000), budget=2_500, count=count)

    assert count(block.text) == block.tokens <= 2_500
    assert block.included[:1] == ("l1",) and len(block.included) > 40  # the budget is used
    assert {"a1", "l4991"} <= set(block.included)  # the alert and the first error
    assert len(block.included) + len(block.omitted) == 5_001
    *shown, marker = block.text.splitlines()
    assert len(shown) == len(block.included)
    assert marker.startswith("[… 4")  # 4,9xx left out, counted ...
    assert marker.count(",") <= MARKER_RUNS and count(marker) < 100  # ... not listed one by one
    assert f"{block.omitted[0]} to " in marker


def test_the_marker_names_stretches_of_left_out_lines_then_counts_the_rest() -> None:
    data = _flooded(30).model_dump(mode="json")
    for n, log in enumerate(data["logs"], start=1):
        if n % 3 == 0:  # ten different errors, each outranking the routine lines around it
            log["text"] = f"ERROR shard {chr(96 + n)} unreachable"
    block = assemble_evidence(Incident.model_validate(data), budget=360, count=count)

    errors = tuple(f"l{n}" for n in range(3, 31, 3))
    assert block.included == (*errors[:4], "a1", *errors[4:])  # all that fits with the marker
    assert block.text.splitlines()[-1] == (
        "[… 20 more evidence items left out for space: l1 to l2, l4 to l5, l7 to l8, "
        "l10 to l11, l13 to l14, l16 to l17, l19 to l20, l22 to l23, and 4 more]"
    )
    assert block.omitted[-4:] == ("l25", "l26", "l28", "l29")  # the 4, in time order


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
