"""`rca export actions`: CSV for Jira's import, JSON for GitHub issues; hostile text defused."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.factories import postmortem_data
from tests.support import run

EXAMPLES = Path(__file__).parents[2] / "examples" / "postmortems"


@pytest.fixture
def data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("RCA_RETRIEVAL__EMBEDDER", "fake")  # indexing is not what is tested
    where = tmp_path / "data"
    hostile = postmortem_data(
        id="pm-hostile",
        action_items=[
            {
                "text": '=HYPERLINK("http://evil.example/","x") rotate AKIAIOSFODNN7EXAMPLE',
                "kind": "prevent",
                "priority": "must",
                "owner": "@platform",
                "status": "done",
            },
            {"text": "-1+1 alert on lag", "kind": "detect", "priority": "could"},
        ],
    )
    path = tmp_path / "pm-hostile.json"
    path.write_text(json.dumps(hostile))
    code, _, err = run(where, "import", str(EXAMPLES), str(path), capsys=capsys)
    assert code == 0, err
    return where


def test_csv_for_jira_has_a_row_per_item_and_defuses_formulas(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(data_dir, "export", "actions", "--format", "csv", capsys=capsys)
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["Summary", "Description", "Issue Type", "Priority"]
    assert header.count("Labels") == 3
    assert len(body) > 30 and all(len(r) == len(header) for r in body)
    assert {r[3] for r in body} <= {"Highest", "High", "Medium", "Lowest"}
    hostile = [r for r in body if r[-1].startswith("pm-hostile#")]
    assert [r[-1] for r in hostile] == ["pm-hostile#1", "pm-hostile#2"]
    assert hostile[0][0].startswith("'=HYPERLINK") and hostile[1][0].startswith("'-1+1")
    assert hostile[0][5] == "'@platform"
    assert "AKIAIOSFODNN7EXAMPLE" not in out
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in body for cell in r)


def test_json_for_github_issues_and_the_status_filter(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "issues.json"
    code, _, err = run(
        data_dir,
        "export",
        "actions",
        "--format",
        "json",
        "--status",
        "open",
        "-o",
        str(target),
        capsys=capsys,
    )
    assert code == 0, err
    issues = json.loads(target.read_text())
    assert issues and all(set(i) == {"title", "body", "labels", "assignees"} for i in issues)
    assert all("Status in rca: open." in i["body"] for i in issues)
    assert not any(i["title"].startswith("=HYPERLINK") for i in issues)  # that one is done
    assert all("rca" in i["labels"] for i in issues)
    code, out, _ = run(data_dir, "export", "actions", "--format", "json", capsys=capsys)
    assert len(json.loads(out)) > len(issues)


def test_wrong_combinations_are_one_line_errors(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args, says in [
        (("export", "actions", "--format", "md"), "csv"),
        (("export", "pm-hostile", "--format", "csv"), "action items"),
        (("export", "pm-hostile", "--status", "open"), "--status"),
        (("export", "actions", "--status", "lost"), "lost"),
    ]:
        code, _, err = run(data_dir, *args, capsys=capsys)
        assert code != 0 and says in err, (args, err)
