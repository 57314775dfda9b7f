"""`rca import/export/list/show`: bad input is reported by file and line and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rca.cli.app import main
from rca.config import Settings
from rca.store import Store
from tests.factories import incident_data, postmortem_data
from tests.support import dump, run

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def data_dir(settings: Settings) -> Path:
    return settings.data_dir


@pytest.fixture
def seeded(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A data directory holding the fixture postmortem and incident."""
    good = tmp_path / "good"
    good.mkdir()
    (good / "pm.json").write_text(json.dumps(postmortem_data()))
    (good / "inc.json").write_text(json.dumps(incident_data()))
    code, _, _ = run(data_dir, "import", str(good), capsys=capsys)
    assert code == 0
    return data_dir


def _snapshot(settings: Settings) -> dict[str, Any]:
    store = Store.open(settings)
    try:
        return dump(store)
    finally:
        store.close()


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _bad_json(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    return _write(tmp_path / name, json.dumps(data, indent=2))


def _cases(tmp_path: Path) -> list[tuple[Path, str]]:
    """(bad input, a fragment the error must contain) for every kind of bad input."""
    pm = postmortem_data
    dup = incident_data()
    dup["logs"][0]["id"] = "a1"
    unknown_nested = pm()
    unknown_nested["causal_chain"][0]["weight"] = 3
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    md = "---\nid: pm-test-queue-2025\ntitle: [oops\n---\n\n## Summary\n\nx\n"  # bad YAML
    return [
        (
            _write(tmp_path / "broken.json", '{"id": "pm-test-queue-2025",\n  "title": }'),
            "broken.json:2: malformed JSON: Expecting value",
        ),
        (_write(tmp_path / "broken.md", md), "broken.md:3: invalid YAML front matter"),
        (_bad_json(tmp_path, "unknown.json", pm(owner="x")), "unknown.json:97: owner: unknown key"),
        (
            _bad_json(tmp_path, "nested.json", unknown_nested),
            "nested.json:35: causal_chain[0].weight: unknown key",
        ),
        (
            _bad_json(tmp_path, "enum.json", pm(severity="critical")),
            "enum.json:6: severity: Input should be 'SEV1'",
        ),
        (_bad_json(tmp_path, "dup.json", dup), "dup.json:1: duplicate evidence id 'a1'"),
        (
            _bad_json(
                tmp_path,
                "chain.json",
                pm(causal_chain=[{"id": "n1", "kind": "trigger", "text": "x", "leads_to": ["n7"]}]),
            ),
            "chain.json:27: causal_chain: causal chain node n1 leads to missing node 'n7'",
        ),
        (
            _bad_json(tmp_path, "naive.json", incident_data(started_at="2025-04-09T08:01:00")),
            "naive.json:8: started_at: Input should have timezone info",
        ),
        (
            _write(tmp_path / "huge.json", " " * (5 * 1024 * 1024 + 1)),
            "huge.json: file is 5242881 bytes, more than the limit of 5242880",
        ),
        (_write(tmp_path / "binary.json", b"\x89PNG\r\n\x1a\n\x00\x00"), "binary.json: binary"),
        (
            _write(tmp_path / "latin1.md", "---\nid: x\n---\ncaf\xe9".encode("latin-1")),
            "latin1.md:4: not UTF-8 text",
        ),
        (_write(tmp_path / "blank.md", "\n \n"), "blank.md: empty file"),
        (empty_dir, "empty: directory holds no .md or .json files"),
        (tmp_path / "missing.md", "missing.md: no such file or directory"),
        (_write(tmp_path / "notes.txt", "hello"), "notes.txt: unsupported file type '.txt'"),
        (_write(tmp_path / "array.json", "[1, 2]"), "array.json:1: expected a JSON object"),
        (
            _bad_json(tmp_path, "types.json", pm(id=7)),
            "types.json:2: id: Input should be a valid string",
        ),
        (
            _bad_json(
                tmp_path,
                "case.json",
                {"id": "c", "incident": incident_data(), "reviewed": pm(summary="")},
            ),
            "case.json:66: reviewed.summary: must not be empty",
        ),
    ]


def test_every_kind_of_bad_input_is_reported_and_changes_nothing(
    tmp_path: Path, seeded: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(settings)
    for path, fragment in _cases(tmp_path):
        code, out, err = run(seeded, "import", str(path), capsys=capsys)
        assert code == 1, (path, out, err)
        assert fragment in err, (fragment, err)
        assert "Traceback" not in err
        assert _snapshot(settings) == before, path


def test_good_files_are_imported_past_bad_ones(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mixed"
    (folder / "nested").mkdir(parents=True)
    _bad_json(folder, "a-good.json", postmortem_data())
    _write(folder / "b-bad.json", "{")
    _bad_json(folder / "nested", "c-good.json", postmortem_data(id="pm-other"))
    _write(folder / ".hidden.json", "{")
    code, out, err = run(data_dir, "import", str(folder), capsys=capsys)
    assert code == 1
    assert "created   postmortem pm-test-queue-2025 revision 1" in out
    assert "created   postmortem pm-other revision 1" in out
    assert "b-bad.json:1: malformed JSON" in err
    assert "3 files read: 2 created; 1 failed" in err


def test_import_is_idempotent_and_reports_new_revisions(
    tmp_path: Path, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _bad_json(tmp_path, "pm.json", postmortem_data())
    code, out, _ = run(seeded, "import", str(path), capsys=capsys)
    assert (code, out.split()[:2]) == (0, ["unchanged", "postmortem"])
    _bad_json(tmp_path, "pm.json", postmortem_data(impact="Worse than we thought."))
    code, out, _ = run(seeded, "import", str(path), capsys=capsys)
    assert code == 0
    assert "revised   postmortem pm-test-queue-2025 revision 2" in out
    code, out, _ = run(seeded, "show", "pm-test-queue-2025", capsys=capsys)
    assert "revision 2 of 2" in out and "Worse than we thought." in out
    code, out, _ = run(
        seeded, "export", "pm-test-queue-2025", "-r", "1", "-f", "json", capsys=capsys
    )
    assert json.loads(out)["impact"].startswith("About 18,000")


def test_export_then_import_round_trips_in_both_formats(
    tmp_path: Path, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for fmt in ("md", "json"):
        target = tmp_path / f"out.{fmt}"
        code, _, err = run(
            seeded, "export", "pm-test-queue-2025", "-f", fmt, "-o", str(target), capsys=capsys
        )
        assert code == 0 and f"wrote {target}" in err
        code, out, _ = run(seeded, "import", str(target), capsys=capsys)
        assert code == 0 and out.startswith("unchanged"), out
    code, out, _ = run(seeded, "export", "inc-test-queue-2025", "-f", "json", capsys=capsys)
    assert json.loads(out)["alerts"][0]["id"] == "a1"


def test_json_export_is_the_interchange_format(
    seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(seeded, "export", "pm-test-queue-2025", "-f", "json", capsys=capsys)
    assert code == 0
    exported = json.loads(out)
    expected = postmortem_data()
    # Defaults are written out; everything given comes back exactly.
    expected["action_items"][1] |= {"priority": "should", "status": "open"}
    expected["timeline"][1]["at"] = "2025-04-09T08:35:00+02:00"
    assert exported == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "nope"], "rca: error: postmortem or incident 'nope' not found"),
        (["export", "inc-test-queue-2025"], "incidents export as JSON (--format json)"),
        (["export", "pm-test-queue-2025", "-r", "9"], "postmortem revision 'pm-test-queue-2025@9'"),
        (["export", "pm-test-queue-2025", "-f", "pdf"], "rca: error: Invalid value for '--format'"),
        (["export"], "rca: error: Missing argument 'ID'"),
        (["show", "nope"], "rca: error: postmortem or incident 'nope' not found"),
        (["frobnicate"], "rca: error: No such command 'frobnicate'"),
    ],
)
def test_cli_errors_are_one_line(
    args: list[str], message: str, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(seeded, *args, capsys=capsys)
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_bad_settings_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RCA_IMPORTS__MAX_FILE_BYTES", "-3")
    with pytest.raises(SystemExit) as done:
        main(["list"])
    assert done.value.code == 1
    assert capsys.readouterr().err.startswith("rca: error: bad setting RCA_IMPORTS.MAX_FILE_BYTES")


def test_list_and_show(seeded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(seeded, "list", capsys=capsys)
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "DATE", "SEVERITY", "REVISION", "TITLE"]
    assert "pm-test-queue-2025  2025-04-09  SEV3" in out and out.endswith("1 postmortems\n")
    code, out, _ = run(seeded, "list", "--json", "--kind", "incidents", capsys=capsys)
    assert json.loads(out)["id"] == "inc-test-queue-2025"
    code, out, _ = run(seeded, "show", "inc-test-queue-2025", capsys=capsys)
    assert "time to detect: 35m00s" in out and "time to resolve: 1h09m" in out


def test_help_on_every_command(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("import", "export", "list", "show"):
        code, out, _ = run(data_dir, command, "--help", capsys=capsys)
        assert code == 0 and "Usage: rca" in out, command


def test_the_examples_import_cleanly(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        data_dir,
        "import",
        str(EXAMPLES / "postmortems"),
        str(EXAMPLES / "incidents"),
        str(EXAMPLES / "history"),
        capsys=capsys,
    )
    assert code == 0, err
    created = [line for line in out.splitlines() if line.startswith("created")]
    assert sum(" postmortem " in line for line in created) >= 30
    assert sum(" incident " in line for line in created) >= 55
