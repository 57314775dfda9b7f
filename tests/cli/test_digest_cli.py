"""`rca digest`: the real command on a real data directory: Markdown, JSON and HTML, a file
written whole, a past window, and every bad value refused with one line and a non-zero exit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rca.config import Settings
from rca.domain import Incident, Postmortem
from rca.store import Store
from tests.factories import incident_data, postmortem_data
from tests.support import run


@pytest.fixture
def data_dir(settings: Settings) -> Path:
    """A data directory with an incident of yesterday, one of ten days ago and one of 90 days
    ago (all recorded now), and a postmortem whose action item's owner is an e-mail address."""
    now = datetime.now(UTC)
    store = Store.open(settings)
    try:
        store.save(
            [
                Incident.model_validate(
                    incident_data(
                        id="inc-yesterday",
                        title="Checkout <down> [again]",
                        severity="SEV1",
                        started_at=(now - timedelta(days=1)).isoformat(),
                        detected_at=None,
                        mitigated_at=None,
                        resolved_at=None,
                    )
                ),
                Postmortem.model_validate(
                    postmortem_data(
                        id="pm-fresh",
                        action_items=[
                            {"text": "Page on lag", "kind": "detect", "owner": "bob@example.com"}
                        ],
                    )
                ),
            ],
            "draft:d1",
        )
        store.save(
            [
                Incident.model_validate(
                    incident_data(
                        id="inc-earlier",
                        title="Earlier trouble",
                        started_at=(now - timedelta(days=10)).isoformat(),
                        detected_at=None,
                        mitigated_at=None,
                        resolved_at=None,
                    )
                ),
                Incident.model_validate(
                    incident_data(
                        id="inc-history",
                        started_at=(now - timedelta(days=90)).isoformat(),
                        detected_at=None,
                        mitigated_at=None,
                        resolved_at=None,
                    )
                ),
            ],
            "test",
        )
    finally:
        store.close()
    return settings.data_dir


def test_the_digest_is_printed_as_markdown_by_default(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(data_dir, "digest", capsys=capsys)
    assert (code, err) == (0, "")
    assert out.startswith("# Incident digest, ")
    assert "**SEV1** Checkout \\<down\\> \\[again\\] (`inc-yesterday`)" in out
    assert "**unresolved**" in out
    # Started ten days ago but recorded now: opened late, so new this week, and says so.
    assert "Earlier trouble (`inc-earlier`)" in out
    assert f"recorded {datetime.now(UTC):%Y-%m-%d}" in out
    # Started 90 days ago: history brought in, counted but not listed.
    assert "`inc-history`" not in out
    assert "2 new incidents (1 SEV1, 1 SEV3; 2 unresolved), and 1 older incident imported" in out
    assert "(`pm-fresh`, revision 1) · finalized" in out
    assert "owner EMAIL\\_1" in out and "bob@example.com" not in out


def test_json_and_a_past_window(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(data_dir, "digest", "--since", "4w", "--format", "json", capsys=capsys)
    assert code == 0
    found = json.loads(out)
    assert [i["id"] for i in found["incidents"]["items"]] == ["inc-yesterday", "inc-earlier"]
    assert found["counts"]["incidents_backfilled"] == 1
    assert found["counts"]["postmortems_finalized"] == 1
    code, out, _ = run(
        data_dir, "digest", "--since", "4w", "--until", "1w", "-f", "json", capsys=capsys
    )
    assert code == 0
    found = json.loads(out)
    assert [i["id"] for i in found["incidents"]["items"]] == ["inc-earlier"]
    assert found["postmortems"] == {"total": 0, "more": 0, "items": []}
    code, out, _ = run(
        data_dir, "digest", "--limit", "1", "--since", "4w", "-f", "json", capsys=capsys
    )
    assert json.loads(out)["incidents"]["more"] == 1


def test_html_is_written_to_a_file(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "digest.html"
    code, out, err = run(
        data_dir, "digest", "--format", "html", "--output", str(target), capsys=capsys
    )
    assert (code, err) == (0, "")
    assert out.startswith("wrote the digest of ") and out.rstrip().endswith(str(target))
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert "Checkout &lt;down&gt; [again]" in html
    assert list(tmp_path.glob(".*partial")) == []


@pytest.mark.parametrize(
    ("args", "exit_code", "fragment"),
    [
        (["--since", "yesterday"], 1, "--since must be a duration (7d, 24h, 2w), a date"),
        (["--since", "0h"], 1, "--since must be a positive duration"),
        (["--since", "400d"], 1, "a digest covers at most 366 days"),
        (["--since", "2026-03-01T09:00"], 1, "--since needs an offset"),
        (["--since", "1d", "--until", "2d"], 1, "--since must be before --until"),
        (["--until", "soon"], 1, "--until must be a duration"),
        (["--format", "pdf"], 2, "'pdf' is not one of"),
        (["--limit", "0"], 2, "--limit"),
        (["--output", "."], 1, "is a directory"),
        (["--output", "/nonexistent-dir/x.md"], 1, "cannot write /nonexistent-dir/x.md"),
    ],
)
def test_bad_values_are_one_clear_line_and_a_non_zero_exit(
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    exit_code: int,
    fragment: str,
) -> None:
    code, out, err = run(data_dir, "digest", *args, capsys=capsys)
    assert code == exit_code
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rca: error: "), err
    assert fragment in lines[0]
