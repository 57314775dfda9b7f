"""An incident the API accepted is shown and drafted, however its redaction grows (attack
re-run): a 100,000-character log line of short passwords ("pw a1b2 " 12,500 times) was
stored, and then its page answered 500 and every draft failed, because each placeholder is
longer than the password it replaces and the redacted copy no longer fitted the field."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator

import pytest

from api.worker import DraftWorker
from rca.redaction import CUT_MARK
from rca.store.keys import Role
from tests.api.module_backend import (  # fixtures: pytest finds them in the module
    PER_MODULE,
    ModuleBackend,
    module_backend_fixture,  # noqa: F401
)
from tests.api.support import INCIDENT_FILE, Api, running_api

# The module's server is built once per back end (`module_backend`), not once per test.
pytestmark = PER_MODULE

PACKED = "pw a1b2 " * 12_500
"""100,000 characters: the longest text a log line may hold, a password every 8 characters."""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, module_backend: ModuleBackend) -> Iterator[Api]:
    for api in running_api(tmp_path_factory.mktemp("growth")):
        module_backend.holds(api.services.store.engine)
        yield api


@pytest.fixture(scope="module")
def incident_id(api: Api) -> str:
    incident = json.loads(INCIDENT_FILE.read_text())
    incident["id"] = "inc-packed"
    incident["logs"].append({"id": "l-packed", "at": incident["started_at"], "text": PACKED})
    created = api.post("/v1/incidents", json=incident)
    assert created.status_code == 201, created.text[:300]
    return "inc-packed"


def test_the_page_of_an_incident_whose_redaction_outgrows_a_field_answers(
    api: Api, incident_id: str
) -> None:
    signed = api.client.post(
        "/ui/sign-in", data={"api_key": api.keys[Role.ENGINEER]}, follow_redirects=False
    )
    assert signed.status_code == 303
    page = api.client.get(f"/ui/incidents/{incident_id}")
    assert page.status_code == 200, page.text[:300]
    shown = html.unescape(page.text)
    assert "a1b2" not in shown
    assert re.search(r"pw (SECRET_\d+) pw \1 pw \1", shown) and CUT_MARK.strip() in shown


def test_an_incident_whose_redaction_outgrows_a_field_is_drafted(
    api: Api, incident_id: str
) -> None:
    similar = api.get(f"/v1/incidents/{incident_id}/similar", params={"k": 3})
    assert similar.status_code == 200, similar.text[:300]
    job = api.post(f"/v1/incidents/{incident_id}/drafts", json={})
    assert job.status_code == 202, job.text[:300]
    assert DraftWorker(api.services, "test").run_once()
    done = api.get(f"/v1/drafts/{job.json()['id']}").json()
    assert done["status"] == "succeeded", done
    assert "a1b2" not in json.dumps(done["draft"])
