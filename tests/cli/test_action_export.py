"""`rca export actions`: CSV for Jira's import, JSON for GitHub issues; hostile text defused."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from rca.config import Settings
from rca.store import Store
from rca.store.action_rules import item_keys
from rca.store.action_updates import ActionChange
from tests.factories import postmortem_data
from tests.support import run

EXAMPLES = Path(__file__).parents[2] / "examples" / "postmortems"
HOSTILE_TEXT = '=HYPERLINK("http://evil.example/","x") rotate AKIAIOSFODNN7EXAMPLE'


@pytest.fixture
def data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("RCA_RETRIEVAL__EMBEDDER", "fake")  # indexing is not what is tested
    where = tmp_path / "data"
    hostile = postmortem_data(
        id="pm-hostile",
        date=datetime.now(UTC).date().isoformat(),  # its items are due from today
        action_items=[
            {
                "text": HOSTILE_TEXT,
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
    external, due = header.index("External ID"), header.index("Due Date")
    hostile = [r for r in body if r[external].startswith("pm-hostile#")]
    keys = item_keys([HOSTILE_TEXT, "-1+1 alert on lag"])
    assert [r[external] for r in hostile] == [f"pm-hostile#{k}" for k in keys]
    # Dated today: due today plus the days for the priority, must 14, could 90.
    today = datetime.now(UTC).date()
    assert [r[due] for r in hostile] == [(today + timedelta(days=n)).isoformat() for n in (14, 90)]
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
    due = (datetime.now(UTC).date() + timedelta(days=90)).isoformat()
    lag = next(i for i in json.loads(out) if i["title"] == "-1+1 alert on lag")
    assert f"Due: {due}." in lag["body"] and "(rca item pm-hostile#" in lag["body"]


def test_only_overdue_items_with_overdue(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(data_dir, "export", "actions", "--overdue", capsys=capsys)
    assert code == 0, err
    today = datetime.now(UTC).date()
    before = list(csv.reader(io.StringIO(out)))[1:]
    # The examples' open items are due from their postmortems' dates (2022 to 2025): overdue.
    # pm-hostile's are due from today: not yet.
    assert len(before) > 30 and all(r[-1] < today.isoformat() for r in before)
    assert all(r[-2].startswith("pm-20") for r in before)
    store = Store.open(Settings(data_dir=data_dir))
    try:
        assert store.overdue_count(today) == len(before)
        lag = store.action_item_page(10, postmortem_id="pm-hostile")[1]
        store.change_action_item(
            "pm-hostile", lag.key, ActionChange(due_on=date(2020, 1, 31)), "reviewer"
        )
    finally:
        store.close()
    code, out, err = run(data_dir, "export", "actions", "--overdue", capsys=capsys)
    rows = list(csv.reader(io.StringIO(out)))[1:]
    added = [r for r in rows if r not in before]
    assert len(rows) == len(before) + 1
    assert [(r[-2], r[-1]) for r in added] == [(f"pm-hostile#{lag.key}", "2020-01-31")]
    assert "Due: 2020-01-31 (overdue)." in added[0][1]


def test_wrong_combinations_are_one_line_errors(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args, says in [
        (("export", "actions", "--format", "md"), "csv"),
        (("export", "pm-hostile", "--format", "csv"), "action items"),
        (("export", "pm-hostile", "--status", "open"), "--status"),
        (("export", "pm-hostile", "--overdue"), "--overdue"),
        (("export", "actions", "--status", "lost"), "lost"),
    ]:
        code, _, err = run(data_dir, *args, capsys=capsys)
        assert code != 0 and says in err, (args, err)
