"""Slack history into an incident's chat: `rca ingest slack` and
`POST /v1/incidents/{id}/evidence/slack`; `rca integrations` and `rca changes list`."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rca.config import Settings
from rca.store import Store
from tests.api.support import INCIDENT_FILE, Api, running_api
from tests.support import dump, run

SLACK = Path(__file__).parent / "fixtures" / "slack"
EXPORT = SLACK / "export"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from running_api(tmp_path)


@pytest.fixture
def data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    where = tmp_path / "data"
    code, _, err = run(where, "import", str(INCIDENT_FILE), capsys=capsys)
    assert code == 0, err
    return where


INCIDENT = json.loads(INCIDENT_FILE.read_text())["id"]


def test_a_slack_export_becomes_the_incident_s_chat(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(Store.open(Settings(data_dir=data_dir)).get_incident(INCIDENT).chat)
    args = (
        "ingest",
        "slack",
        str(EXPORT),
        "--channel",
        "#incident-checkout",
        "--incident",
        INCIDENT,
    )
    code, out, err = run(data_dir, *args, capsys=capsys)
    assert code == 0, err
    assert out.startswith("added ") and "from #incident-checkout" in out
    store = Store.open(Settings(data_dir=data_dir))
    chat = store.get_incident(INCIDENT).chat
    added = [m for m in chat if m.id.startswith("slack-")]
    assert len(chat) == before + len(added) and added
    assert all("<@" not in m.text and "<http" not in m.text for m in added)
    assert any(m.author and not m.author.startswith("U0") for m in added)
    # Again: nothing new, no new revision.
    revisions = len(store.incident_revisions(INCIDENT))
    code, out, _ = run(data_dir, *args, capsys=capsys)
    assert code == 0 and out.strip().splitlines()[-1].startswith("added 0 messages")
    assert len(store.incident_revisions(INCIDENT)) == revisions
    store.close()


def test_bad_exports_are_one_line_errors_and_change_nothing(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(Settings(data_dir=data_dir))
    before = dump(store)
    not_slack = tmp_path / "photos.zip"
    with zipfile.ZipFile(not_slack, "w") as archive:
        archive.writestr("cat.jpg", b"\xff\xd8")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../etc/cron.d/x", b"[]")
    cases = [
        (str(not_slack), "#incident-checkout", INCIDENT, "channels.json"),
        (str(evil), "#incident-checkout", INCIDENT, "evil"),
        (str(EXPORT), "#nope", INCIDENT, "nope"),
        (str(EXPORT), "#incident-checkout", "inc-unknown", "not found"),
        (
            str(tmp_path / "missing.zip"),
            "#incident-checkout",
            INCIDENT,
            "neither a folder nor a zip",
        ),
    ]
    for path, channel, incident, says in cases:
        code, _, err = run(
            data_dir,
            "ingest",
            "slack",
            path,
            "--channel",
            channel,
            "--incident",
            incident,
            capsys=capsys,
        )
        assert code != 0 and says in err, err
        assert len(err.strip().splitlines()) == 1, err
    code, _, err = run(
        data_dir,
        "ingest",
        "slack",
        str(EXPORT),
        "--channel",
        "x",
        "--incident",
        INCIDENT,
        "--since",
        "yesterday",
        capsys=capsys,
    )
    assert code != 0 and "--since" in err
    assert dump(store) == before
    store.close()


def history_upload() -> dict[str, Any]:
    return {
        "history": json.loads((SLACK / "conversations.history.json").read_text()),
        "replies": [json.loads((SLACK / "conversations.replies.json").read_text())],
        "users": {"U01ALICE": "alice", "U02BOB": "bob"},
        "channel": "incident-checkout",
    }


def test_a_conversations_history_response_is_added_over_the_api(api: Api) -> None:
    made = api.post("/v1/incidents", json=json.loads(INCIDENT_FILE.read_text()))
    incident = made.json()["id"]
    url = f"/v1/incidents/{incident}/evidence/slack"
    answer = api.post(url, json=history_upload())
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["added"] and all(i.startswith("slack-") for i in body["added"])
    assert body["skipped"].get("join/leave", 0) >= 1
    chat = api.get(f"/v1/incidents/{incident}").json()["chat"]
    texts = [m["text"] for m in chat if m["id"] in body["added"]]
    assert any("@here" in t or "@channel" in t for t in texts)
    again = api.post(url, json=history_upload())
    assert again.status_code == 200 and again.json()["added"] == []
    # Refusals: not ok, wrong shapes, an unknown incident, no key.
    failed = api.post(url, json={"history": {"ok": False, "error": "channel_not_found"}})
    assert failed.status_code == 422 and "channel_not_found" in failed.text
    assert api.post(url, json={"history": {"ok": True, "messages": "lots"}}).status_code == 422
    assert api.post(url, json={"history": []}).status_code == 422
    assert api.post(url, json={"history": {"ok": True, "messages": []}}).status_code == 400
    assert api.post("/v1/incidents/nope/evidence/slack", json=history_upload()).status_code == 404
    assert api.post(url, json=history_upload(), role=None).status_code == 401


def test_integrations_and_changes_from_the_command_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(
        data_dir, "integrations", "create", "alertmanager", "--name", "prod", capsys=capsys
    )
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    assert token.startswith("rcai_")
    code, out, err = run(data_dir, "integrations", "create", "pagerduty", capsys=capsys)
    assert code != 0 and "--secret-stdin" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = run(
        data_dir, "integrations", "create", "pagerduty", "--secret-stdin", capsys=capsys
    )
    assert code != 0 and "16 to" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("a-pagerduty-secret-of-some-length\n"))
    code, out, err = run(
        data_dir, "integrations", "create", "pagerduty", "--secret-stdin", capsys=capsys
    )
    assert code == 0 and "a-pagerduty-secret" not in out, out
    code, out, _ = run(data_dir, "integrations", "list", capsys=capsys)
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all("active" in line for line in lines)
    ident = next(line.split()[0] for line in lines if "alertmanager" in line)
    assert run(data_dir, "integrations", "revoke", ident, capsys=capsys)[0] == 0
    assert "revoked" in run(data_dir, "integrations", "list", capsys=capsys)[1]
    code, _, err = run(data_dir, "integrations", "revoke", "nope", capsys=capsys)
    assert code != 0 and "not found" in err
    code, _, err = run(data_dir, "integrations", "create", "jira", capsys=capsys)
    assert code != 0
    code, out, _ = run(data_dir, "changes", "list", capsys=capsys)
    assert code == 0 and "no changes" in out
    code, _, err = run(data_dir, "changes", "list", "--since", "last week", capsys=capsys)
    assert code != 0 and "--since" in err
