"""Times are checked where they come in (issue 16, finding 5): a time that is naive, a date, or
outside 1970-2200 (including ones whose conversion to UTC overflows) is a 422 naming the field;
a bad time already stored (by an older version, or written straight into the database) is left
out of the page or the draft with a note instead of failing it; and an unexpected error does not
cost the client its connection."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from api.app import create_app
from api.schemas import encode_cursor
from api.worker import DraftWorker
from rca.store.keys import Role
from tests.api.support import INCIDENT_FILE, Api, api_settings, served
from tests.factories import postmortem_data

PROBLEM = "application/problem+json"
OVERFLOW = "9999-12-31T23:59:59-23:59"  # a valid ISO time whose UTC form is in year 10000
BAD_TIMES = [
    OVERFLOW,
    "0001-01-01T00:00:00+23:59",  # UTC form before year 1
    "2025-04-09T08:01:00",  # naive
    "2025-04-09",  # a date, no time
    "1969-12-31T23:59:59Z",
    "2201-01-01T00:00:00Z",
]
FIELDS = [
    "started_at",
    "detected_at",
    "mitigated_at",
    "resolved_at",
    "alerts.0.at",
    "timeline.0.at",
    "logs.0.at",
    "chat.0.at",
]


def incident_body(**changes: Any) -> dict[str, Any]:
    return {**json.loads(INCIDENT_FILE.read_text()), **changes}


def put(document: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """`document` with the value at a dotted path (`alerts.0.at`) replaced."""
    *parents, last = dotted.split(".")
    target: Any = document
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return document


def assert_refused(response: Any, location: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    locations = [e["location"] for e in response.json()["errors"]]
    assert location in locations, response.json()


# --- at the edge ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", BAD_TIMES)
def test_a_bad_incident_time_is_a_422_naming_the_field(api: Api, field: str, value: str) -> None:
    body = put(incident_body(id="inc-bad-time"), field, value)
    assert_refused(api.post("/v1/incidents", json=body), f"body.{field}")
    assert api.get("/v1/incidents/inc-bad-time").status_code == 404


def test_the_time_range_is_said_and_offsets_are_kept(api: Api) -> None:
    response = api.post("/v1/incidents", json=incident_body(id="inc-x", started_at=OVERFLOW))
    reasons = " ".join(e["reason"] for e in response.json()["errors"])
    assert "1970" in reasons and "2200" in reasons, reasons
    edges = incident_body(id="inc-edges", started_at="1970-01-01T02:00:00+02:00")
    edges["resolved_at"] = "2200-12-31T23:59:59.999999Z"
    for name in ("detected_at", "mitigated_at"):
        edges.pop(name, None)
    created = api.post("/v1/incidents", json=edges)
    assert created.status_code == 201, created.text
    assert created.json()["started_at"] == "1970-01-01T02:00:00+02:00"


@pytest.mark.parametrize("value", BAD_TIMES)
def test_a_bad_postmortem_timeline_time_is_a_422(api: Api, value: str) -> None:
    body = put(postmortem_data(), "timeline.0.at", value)
    response = api.post("/v1/postmortems", role=Role.REVIEWER, json=body)
    assert_refused(response, "body.timeline.0.at")


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", BAD_TIMES)
def test_a_bad_since_or_until_is_a_422(api: Api, name: str, value: str) -> None:
    assert_refused(api.get("/v1/incidents", params={name: value}), f"query.{name}")


@pytest.mark.parametrize("at", [OVERFLOW, "2024-01-01T00:00:00", "2024-01-01", "yesterday"])
def test_a_cursor_with_a_bad_time_is_a_400_not_a_500(api: Api, at: str) -> None:
    cursor = encode_cursor(at, "inc-a")
    response = api.get("/v1/incidents", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert "cursor" in response.json()["detail"]
    signed_in(api)
    assert api.client.get("/ui/incidents", params={"cursor": cursor}).status_code == 400


# --- already stored ---------------------------------------------------------------------------


def signed_in(api: Api) -> None:
    response = api.client.post("/ui/sign-in", data={"api_key": api.keys[Role.ADMIN]})
    assert response.status_code == 200, response.text


def store_directly(api: Api, sql: str, **values: Any) -> None:
    """Write a row the way an older version did, past every check of this one."""
    with api.services.store.engine.begin() as conn:
        conn.execute(text(sql), values)


def poisoned_incident(api: Api, ident: str, **changes: str | None) -> dict[str, Any]:
    document = incident_body(id=ident)
    for dotted, value in changes.items():
        put(document, dotted.replace("__", "."), value)
    store_directly(
        api,
        "INSERT INTO incidents (id, title, severity, started_at, content_hash, document, "
        "created_at, updated_at) VALUES (:id, :title, :severity, :started, 'x', :document, "
        ":now, :now)",
        id=ident,
        title=document["title"],
        severity=document["severity"],
        started="2026-01-20 14:05:00.000000",
        document=json.dumps(document),
        now="2026-01-21 00:00:00.000000",
    )
    return document


def test_a_stored_incident_with_bad_times_still_shows_and_drafts(api: Api) -> None:
    document = poisoned_incident(
        api,
        "inc-poison",
        detected_at=OVERFLOW,
        resolved_at=OVERFLOW,
        alerts__0__at=OVERFLOW,
        logs__0__at="1900-01-01T00:00:00Z",  # fine for an older version, out of range now
    )
    alert, log = document["alerts"][0]["id"], document["logs"][0]["id"]
    signed_in(api)
    page = api.client.get("/ui/incidents/inc-poison")
    assert page.status_code == 200, page.text
    assert OVERFLOW in page.text and "1900-01-01T00:00:00+00:00" in page.text
    assert "left out" in page.text
    assert api.client.get("/ui/incidents").status_code == 200

    got = api.get("/v1/incidents/inc-poison")
    assert got.status_code == 200, got.text
    assert alert not in {a["id"] for a in got.json()["alerts"]}
    assert got.json()["detected_at"] is None

    job = api.post("/v1/incidents/inc-poison/drafts", json={}).json()
    assert DraftWorker(api.services, "test").run_once()
    draft = api.get(f"/v1/drafts/{job['id']}").json()
    assert draft["status"] == "succeeded", draft
    notes = draft["draft"]["notes"]
    omitted = [
        n for n in notes if n["kind"] == "evidence_omitted" and "not a usable" in n["message"]
    ]
    assert {i for n in omitted for i in n["evidence_ids"]} == {alert, log}
    assert any(OVERFLOW in n["message"] and "detected_at" in n["message"] for n in omitted)
    assert api.client.get(f"/ui/drafts/{job['id']}").status_code == 200


def test_a_stored_incident_with_a_bad_start_is_a_clear_error(api: Api) -> None:
    later = dict.fromkeys(("detected_at", "mitigated_at", "resolved_at"), None)
    poisoned_incident(api, "inc-bad-start", started_at=OVERFLOW, **later)
    got = api.get("/v1/incidents/inc-bad-start")
    assert got.status_code == 422, got.text
    assert got.headers["content-type"] == PROBLEM
    assert "started_at" in got.json()["detail"] and OVERFLOW in got.json()["detail"]
    signed_in(api)
    assert api.client.get("/ui/incidents/inc-bad-start").status_code == 422
    job = api.post("/v1/incidents/inc-bad-start/drafts", json={})
    assert job.status_code == 202, job.text  # queued; the job fails with the same clear reason
    assert DraftWorker(api.services, "test").run_once()
    draft = api.get(f"/v1/drafts/{job.json()['id']}").json()
    assert draft["status"] == "failed" and "started_at" in draft["error"], draft
    assert "unexpected" not in draft["error"]


def test_a_stored_postmortem_with_a_bad_timeline_time_still_shows(api: Api) -> None:
    document = postmortem_data(id="pm-poison")
    document["timeline"][0]["at"] = OVERFLOW
    stamp = "2026-01-21 00:00:00.000000"
    store_directly(
        api,
        "INSERT INTO postmortems (id, latest_revision, title, date, severity, incident_id, "
        "created_at, updated_at) VALUES ('pm-poison', 1, :title, '2025-04-09', 'SEV3', NULL, "
        ":now, :now)",
        title=document["title"],
        now=stamp,
    )
    store_directly(
        api,
        "INSERT INTO postmortem_revisions (postmortem_id, revision, content_hash, document, "
        "source, created_at) VALUES ('pm-poison', 1, 'x', :document, 'old', :now)",
        document=json.dumps(document),
        now=stamp,
    )
    signed_in(api)
    page = api.client.get("/ui/postmortems/pm-poison")
    assert page.status_code == 200, page.text
    assert OVERFLOW in page.text and "left out" in page.text
    assert api.client.get("/ui/postmortems").status_code == 200
    assert api.client.get("/ui/postmortems/pm-poison/export.md").status_code == 200
    got = api.get("/v1/postmortems/pm-poison")
    assert got.status_code == 200, got.text
    assert [t["text"] for t in got.json()["postmortem"]["timeline"]] == [
        document["timeline"][1]["text"]
    ]
    assert api.get("/v1/action-items").status_code == 200


# --- a 500 keeps the connection -----------------------------------------------------------------


def _exchange(sock: socket.socket, path: str, key: str) -> tuple[int, bytes]:
    """Send one keep-alive GET and read its whole response (status, body)."""
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection instead of answering {path}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection in the middle of a response"
        body += chunk
    return int(lines[0].split()[1]), body


def test_an_unexpected_error_answers_500_and_keeps_the_connection(tmp_path: Path) -> None:
    app = create_app(api_settings(tmp_path), workers=0)

    def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom", boom)
    with served(app) as url:
        key, _ = app.state.services.keys.create("test", Role.ENGINEER)
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            status, body = _exchange(sock, "/boom", key)
            assert status == 500 and b"error id" in body and b"boom" not in body
            status, _ = _exchange(sock, "/healthz", key)  # the same connection still serves
            assert status == 200


def test_a_note_names_where_the_time_was_and_shows_it_as_stored(api: Api) -> None:
    poisoned_incident(api, "inc-note", chat__0__at=OVERFLOW)
    signed_in(api)
    page = api.client.get("/ui/incidents/inc-note")
    assert page.status_code == 200, page.text
    assert page.text.count(OVERFLOW) == 1
    assert "chat[0].at" in page.text
