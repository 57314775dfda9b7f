"""What the pages show (issue 16, finding 10): no path of the server's files, and no character
that hides in text (NUL, zero-width) reaching a page unseen."""

from __future__ import annotations

import json
from pathlib import Path

from rca.store.keys import Role
from tests.api.support import INCIDENT_FILE, running_api


def test_the_eval_report_page_names_no_server_path(tmp_path: Path) -> None:
    for api in running_api(tmp_path):
        client = api.client
        client.post("/ui/sign-in", data={"api_key": api.keys[Role.ENGINEER]})
        data_dir = api.services.settings.data_dir
        assert str(tmp_path) not in client.get("/ui/evals").text
        (data_dir / "eval-reports" / "latest").mkdir(parents=True)
        (data_dir / "eval-reports" / "latest" / "report.html").write_text("<h1>run</h1>")
        page = client.get("/ui/evals")
        assert str(tmp_path) not in page.text and str(data_dir.resolve()) not in page.text
        assert "&lt;data dir&gt;/eval-reports: latest/report.html" in page.text


def test_nul_and_zero_width_characters_show_on_pages(tmp_path: Path) -> None:
    incident = json.loads(INCIDENT_FILE.read_text())
    incident["title"] = "Checkout\u200b down\x00 after deploy"
    incident["logs"][0]["text"] = "pool exhausted\x00\u200d\ufeff\x1b[31m"
    for api in running_api(tmp_path):
        created = api.post("/v1/incidents", json=incident)
        assert created.status_code == 201, created.text
        api.client.post("/ui/sign-in", data={"api_key": api.keys[Role.ENGINEER]})
        pages = [
            api.client.get(f"/ui/incidents/{created.json()['id']}").text,
            api.client.get("/ui/incidents").text,
        ]
        for page in pages:
            for hidden in ("\x00", "\u200b", "\u200d", "\ufeff", "\x1b"):
                assert hidden not in page, repr(hidden)
            assert "Checkout[U+200B] down\u2400 after deploy" in page
        assert "pool exhausted\u2400[U+200D][U+FEFF]\u241b[31m" in pages[0]
