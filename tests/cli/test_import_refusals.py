"""`rca import` and `rca draft` refuse what issue 16 found let through, with one clear line and
nothing stored changed: times that are naive or outside 1970-2200 (finding 5), and postmortems
whose lists are over their ceiling, a causal chain first (finding 8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rca.config import Settings
from rca.domain import Postmortem
from rca.domain.postmortem import (
    MAX_ACTION_ITEMS,
    MAX_CHAIN_NODES,
    MAX_FACTORS,
    MAX_NODE_LINKS,
    MAX_TIMELINE_ENTRIES,
)
from rca.formats.markdown import to_markdown
from rca.store import Store
from tests.factories import incident_data, postmortem_data
from tests.support import dump, run

OVERFLOW = "9999-12-31T23:59:59-23:59"
TIME_FIELDS = [
    ("started_at", "started_at"),
    ("detected_at", "detected_at"),
    ("resolved_at", "resolved_at"),
    ("alerts.0.at", "alerts[0].at"),
    ("timeline.0.at", "timeline[0].at"),
    ("logs.0.at", "logs[0].at"),
    ("chat.0.at", "chat[0].at"),
]


def put(document: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    *parents, last = dotted.split(".")
    target: Any = document
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return document


@pytest.fixture
def seeded(tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]) -> Path:
    """A data directory holding the fixture postmortem and incident."""
    good = tmp_path / "good"
    good.mkdir()
    (good / "pm.json").write_text(json.dumps(postmortem_data()))
    (good / "inc.json").write_text(json.dumps(incident_data()))
    code, _, err = run(settings.data_dir, "import", str(good), capsys=capsys)
    assert code == 0, err
    return settings.data_dir


def snapshot(settings: Settings) -> dict[str, Any]:
    store = Store.open(settings)
    try:
        return dump(store)
    finally:
        store.close()


def refused(
    seeded: Path, settings: Settings, path: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    """Import `path`, check it failed in one line and changed nothing; the error line."""
    before = snapshot(settings)
    code, _, err = run(seeded, "import", str(path), capsys=capsys)
    assert code == 1, err
    assert "Traceback" not in err
    assert snapshot(settings) == before
    return err


# --- finding 5: times -------------------------------------------------------------------------


def test_an_incident_file_with_a_bad_time_is_refused_naming_the_field(
    tmp_path: Path, seeded: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [(field, shown, OVERFLOW) for field, shown in TIME_FIELDS]
    cases += [("started_at", "started_at", "1969-12-31T23:00:00Z")]
    cases += [("chat.0.at", "chat[0].at", "2201-01-01T00:00:00Z")]
    for field, shown, value in cases:
        path = tmp_path / "incident.json"
        path.write_text(json.dumps(put(incident_data(id="inc-new"), field, value), indent=2))
        err = refused(seeded, settings, path, capsys)
        assert "incident.json:" in err and f": {shown}: must be between 1970" in err, err


def test_a_markdown_timeline_with_a_bad_time_is_refused_naming_the_line(
    tmp_path: Path, seeded: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = to_markdown(Postmortem.model_validate(postmortem_data()))
    text = text.replace("2025-04-09T08:00:00Z", OVERFLOW)
    assert OVERFLOW in text
    path = tmp_path / "pm.md"
    path.write_text(text)
    err = refused(seeded, settings, path, capsys)
    line = text.splitlines().index(next(x for x in text.splitlines() if OVERFLOW in x)) + 1
    assert f"pm.md:{line}: timeline[0].at: must be between 1970" in err, err


def test_rca_draft_refuses_a_bad_time_in_one_line(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "incident.json"
    path.write_text(json.dumps(put(incident_data(), "logs.0.at", OVERFLOW), indent=2))
    code, _, err = run(settings.data_dir, "draft", str(path), "-m", "baseline", capsys=capsys)
    assert code == 1, err
    assert "logs[0].at: must be between 1970" in err, err
    assert len(err.strip().splitlines()) == 1, err


# --- finding 8: sizes -------------------------------------------------------------------------


def long_chain(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"n{i}",
            "kind": "cause",
            "text": f"step {i}",
            "leads_to": [f"n{i + 1}"] if i + 1 < n else [],
        }
        for i in range(n)
    ]


def test_a_chain_at_the_cap_is_imported(
    tmp_path: Path, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pm.json"
    path.write_text(json.dumps(postmortem_data(causal_chain=long_chain(MAX_CHAIN_NODES))))
    code, out, err = run(seeded, "import", str(path), capsys=capsys)
    assert code == 0, err
    assert out.startswith("revised")


def test_a_chain_over_the_cap_is_refused_saying_the_limit(
    tmp_path: Path, seeded: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.json"
    over = MAX_CHAIN_NODES + 1
    path.write_text(json.dumps(postmortem_data(causal_chain=long_chain(over)), indent=2))
    err = refused(seeded, settings, path, capsys)
    assert (
        f"big.json:27: causal_chain: a causal chain has at most {MAX_CHAIN_NODES} nodes, "
        f"this one has {over}" in err
    ), err
    assert len(err.strip().splitlines()) == 2, err  # the problem, then the tally


@pytest.mark.parametrize(
    ("field", "item", "limit", "what"),
    [
        ("timeline", {"at": "2025-04-09T08:00:00Z", "text": "x"}, MAX_TIMELINE_ENTRIES, "timeline"),
        ("action_items", {"text": "x", "kind": "prevent"}, MAX_ACTION_ITEMS, "action items"),
        (
            "contributing_factors",
            {"text": "x", "category": "process"},
            MAX_FACTORS,
            "contributing factors",
        ),
        ("root_causes", "x", 100, "root causes"),
    ],
)
def test_other_lists_over_their_ceiling_are_refused(
    tmp_path: Path,
    seeded: Path,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    field: str,
    item: Any,
    limit: int,
    what: str,
) -> None:
    path = tmp_path / "pm.json"
    path.write_text(json.dumps(postmortem_data(**{field: [item] * (limit + 1)})))
    err = refused(seeded, settings, path, capsys)
    assert f"{field}: at most {limit} {what}" in err and f"this one has {limit + 1}" in err, err


def test_a_node_with_too_many_links_is_refused(
    tmp_path: Path, seeded: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = long_chain(MAX_NODE_LINKS + 2)
    chain[0]["leads_to"] = [f"n{i}" for i in range(1, MAX_NODE_LINKS + 2)]
    path = tmp_path / "pm.json"
    path.write_text(json.dumps(postmortem_data(causal_chain=chain)))
    err = refused(seeded, settings, path, capsys)
    assert f"causal_chain[0].leads_to: at most {MAX_NODE_LINKS} links" in err, err
