"""Web UI sessions (they act as their API key and end with it, on sign-out or on expiry) and
the eval report page."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from rca.config import Settings
from rca.store import Store
from rca.store.keys import ApiKeys, Role
from rca.store.sessions import WebSessions
from tests.api.support import INCIDENT_FILE, running_api


def test_a_session_lives_as_long_as_its_key_its_lifetime_and_its_sign_out(
    tmp_path: Path,
) -> None:
    store = Store.open(Settings(data_dir=tmp_path))
    keys = ApiKeys(store.engine)
    sessions = WebSessions(store.engine)
    try:
        key, info = keys.create("ana", Role.REVIEWER)
        principal = keys.authenticate(key)
        assert principal is not None
        token, session = sessions.start(principal)
        assert sessions.resolve(token) == session
        assert session.csrf_ok(session.csrf) and not session.csrf_ok("forged")
        assert not session.csrf_ok(None)
        assert sessions.resolve("not-a-token") is None and sessions.resolve(None) is None

        other, _ = sessions.start(principal)
        sessions.end(other)
        assert sessions.resolve(other) is None and sessions.resolve(token) is not None

        keys.revoke(info.id)
        assert sessions.resolve(token) is None  # revoking the key ends its sessions

        key2, _ = keys.create("bo", Role.ENGINEER)
        short = WebSessions(store.engine, lifetime=timedelta(seconds=-1))
        principal2 = keys.authenticate(key2)
        assert principal2 is not None
        expired, _ = short.start(principal2)
        assert sessions.resolve(expired) is None
    finally:
        store.close()


def test_the_latest_eval_report_is_shown_sandboxed(tmp_path: Path) -> None:
    for api in running_api(tmp_path):
        client = api.client
        signed = client.post(
            "/ui/sign-in", data={"api_key": api.keys[Role.ENGINEER]}, follow_redirects=False
        )
        assert signed.status_code == 303
        assert "No eval report yet" in client.get("/ui/evals").text
        assert client.get("/ui/evals/report.html").status_code == 404
        reports = api.services.settings.data_dir / "eval-reports"
        (reports / "old").mkdir(parents=True)
        (reports / "old" / "report.html").write_text("<h1>old run</h1>")
        (reports / "new").mkdir()
        (reports / "new" / "report.html").write_text("<h1>new run</h1>")
        os.utime(reports / "old" / "report.html", (1, 1))
        page = client.get("/ui/evals")
        assert 'src="/ui/evals/report.html"' in page.text and "sandbox" in page.text
        report = client.get("/ui/evals/report.html")
        assert report.text == "<h1>new run</h1>"
        assert report.headers["content-security-policy"].startswith("sandbox")


def test_the_ui_respects_the_draft_queue_cap(tmp_path: Path) -> None:
    for api in running_api(tmp_path, max_queued_drafts=1):
        client = api.client
        client.post("/ui/sign-in", data={"api_key": api.keys[Role.REVIEWER]})
        incident = api.post(
            "/v1/incidents",
            content=INCIDENT_FILE.read_bytes(),
            headers={"Content-Type": "application/json"},
        ).json()
        page = client.get(f"/ui/incidents/{incident['id']}").text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        first = client.post(
            f"/ui/incidents/{incident['id']}/drafts", data={"csrf": csrf}, follow_redirects=False
        )
        assert first.status_code == 303
        second = client.post(f"/ui/incidents/{incident['id']}/drafts", data={"csrf": csrf})
        assert second.status_code == 429 and "drafts are waiting" in second.text
        assert second.headers["retry-after"] == "30"
        assert second.headers["content-type"].startswith("text/html")


def test_the_incident_list_pages_with_the_api_s_cursors(tmp_path: Path) -> None:
    from rca.domain import Incident
    from tests.factories import incident_data

    for api in running_api(tmp_path):
        for n in range(55):
            made = Incident.model_validate(incident_data(id=f"inc-page-{n:02d}"))
            api.services.store.save_incident(made, "test")
        client = api.client
        client.post("/ui/sign-in", data={"api_key": api.keys[Role.ENGINEER]})
        first = client.get("/ui/incidents").text
        assert first.count('href="/ui/incidents/inc-page-') == 50
        link = first.split('<a href="/ui/incidents?cursor=')[1].split('"')[0]
        second = client.get("/ui/incidents?cursor=" + link.replace("&amp;", "&")).text
        assert second.count('href="/ui/incidents/inc-page-') == 5
        assert client.get("/ui/incidents?cursor=!!!").status_code == 400
