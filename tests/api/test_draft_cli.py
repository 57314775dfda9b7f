"""`rca draft` end to end: the fake embedder for history, the scripted analyst as the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rca.llm import ScriptedModel, register_provider
from rca.testing import fake_analyst
from tests.support import run

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
INCIDENT = EXAMPLES / "incidents" / "inc-2026-01-checkout-db-pool.json"
SECRETS = ("S3cr3tP4ss", "AKIAJ7QX2M4NZB8RT5WE")  # a database password and an AWS key


@pytest.fixture(autouse=True)
def _fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedModel]:
    monkeypatch.setenv("RCA_RETRIEVAL__EMBEDDER", "fake")
    model = ScriptedModel(reply=fake_analyst)
    register_provider("fake", model)
    yield model


@pytest.fixture
def data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    data = tmp_path / "data"
    code, _out, err = run(data, "import", str(EXAMPLES / "postmortems"), capsys=capsys)
    assert code == 0, err
    return data


def test_draft_prints_a_markdown_postmortem_with_progress(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(data_dir, "draft", str(INCIDENT), "-m", "fake/analyst", capsys=capsys)
    assert code == 0, err
    assert out.startswith("# Draft analysis: Checkout latency and errors in prod-eu")
    for heading in ("## Summary", "## Root Causes", "## Causal Chain", "## Action Items"):
        assert heading in out
    assert "## Similar Past Incidents" in out
    assert "[  1%] redacting" in err and "[100%] done" in err
    assert "asking the model: root causes" in err


def test_draft_as_json_cites_only_known_ids_and_leaks_no_secret(
    data_dir: Path, capsys: pytest.CaptureFixture[str], _fakes: ScriptedModel
) -> None:
    code, out, _err = run(
        data_dir, "draft", str(INCIDENT), "-m", "fake/analyst", "-f", "json", "-q", capsys=capsys
    )
    assert code == 0
    draft = json.loads(out)
    similar = set(draft["similar_postmortem_ids"])
    assert similar and draft["model"] == "fake/analyst"
    incident = json.loads(INCIDENT.read_text())
    known = {e["id"] for group in ("alerts", "timeline", "logs", "chat") for e in incident[group]}
    for suggestion in draft["suggestions"]:
        assert set(suggestion["evidence_ids"]) <= known | similar
    sent = json.dumps(_fakes.received)
    assert not any(secret in sent or secret in out for secret in SECRETS)


def test_the_baseline_needs_no_model(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(data_dir, "draft", str(INCIDENT), "--model", "baseline", capsys=capsys)
    assert code == 0 and "model baseline" in out


def test_bad_input_is_one_line_and_a_non_zero_exit(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    code, _out, err = run(data_dir, "draft", str(missing), "-m", "fake/analyst", capsys=capsys)
    assert code != 0 and err.count("\n") == 1 and "nope.json" in err
    broken = tmp_path / "broken.json"
    broken.write_text('{"title": "x"')
    code, _out, err = run(data_dir, "draft", str(broken), "-m", "fake/analyst", capsys=capsys)
    assert code == 1 and err.startswith("rca: error:") and err.count("\n") == 1
    code, _out, err = run(data_dir, "draft", str(INCIDENT), "-m", " ", capsys=capsys)
    assert code == 1 and "--model" in err
    code, _out, err = run(
        data_dir, "draft", str(INCIDENT), "-m", "local/no-such-model", "-q", capsys=capsys
    )
    assert code == 1 and "no-such-model" in err and err.count("\n") == 1
