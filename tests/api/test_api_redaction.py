"""No secret escapes through a side door (issue 16, finding 4): the canary suite planted in an
incident's title, services and tags, in a reviewer's edit, in an imported postmortem and in
search queries never shows in derived text -- the finalized postmortem (API, exports, pages),
the similar-search echo and hits, the list pages and the action-item board.

What stays raw by design: the incident as stored, returned by `GET /v1/incidents/{id}` to the
engineers the API serves (it is the evidence, and redaction never destroys it), and a
reviewer's working draft until it is finalized.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from api.worker import DraftWorker
from rca.store.keys import Role
from tests.api.module_backend import (  # fixtures: pytest finds them in the module
    PER_MODULE,
    ModuleBackend,
    module_backend_fixture,  # noqa: F401
)
from tests.api.support import INCIDENT_FILE, Api, running_api
from tests.factories import postmortem_data
from tests.support import CANARIES

# The module's server is built once per back end (`module_backend`), not once per test.
pytestmark = PER_MODULE

LINES = [" ".join(line.split()) for _name, line, _secret in CANARIES]
"""Each canary on one line (titles, services and tags are single lines)."""
EDITED = "R0tate-Me-42x"
"""A secret a reviewer pastes into an action item before finalizing."""
SECRETS = [(name, secret) for name, _line, secret in CANARIES] + [("reviewer edit", EDITED)]


def leaks(text: str, secrets: list[tuple[str, str]] = SECRETS) -> list[str]:
    """The names of the secrets found in `text`, as written, HTML-escaped or URL-encoded."""
    plain = html.unescape(text)
    return [
        name
        for name, secret in secrets
        if secret in plain or quote(secret, safe="") in text or quote_plus(secret) in text
    ]


@dataclass
class Leaky:
    """An app whose incident, draft review and imported history are full of secrets."""

    api: Api
    incident: dict[str, Any]
    draft_id: str
    postmortem_id: str


IMPORTED = "pm-imported-leaky"


@pytest.fixture(scope="module")
def leaky(
    tmp_path_factory: pytest.TempPathFactory, module_backend: ModuleBackend
) -> Iterator[Leaky]:
    for api in running_api(tmp_path_factory.mktemp("leaky")):
        module_backend.holds(api.services.store.engine)
        yield _seeded(api)


def _seeded(api: Api) -> Leaky:
    base = json.loads(INCIDENT_FILE.read_text())
    short = [line for line in LINES if len(line) <= 100]
    incident = {
        **base,
        "id": "inc-leaky",
        "title": "Checkout down: " + " | ".join(LINES),
        "services": [*base["services"], *short],
        "tags": [*base["tags"], *short],
    }
    assert api.post("/v1/incidents", json=incident).status_code == 201
    job = api.post("/v1/incidents/inc-leaky/drafts", json={}).json()
    assert DraftWorker(api.services, "test").run_once()
    draft = api.get(f"/v1/drafts/{job['id']}").json()["draft"]
    by_section = {s["section"]: s for s in draft["suggestions"]}
    review = f"/v1/drafts/{job['id']}/suggestions/{{}}/review"
    accepted = api.post(
        review.format(by_section["summary"]["id"]),
        Role.REVIEWER,
        json={"decision": "accept"},
        headers={"If-Match": '"1"'},
    )
    assert accepted.status_code == 200, accepted.text
    action = by_section["action_item"]
    content = {**action["content"], "text": f"Rotate the db password; old password is {EDITED}"}
    edited = api.post(
        review.format(action["id"]),
        Role.REVIEWER,
        json={"decision": "edit", "content": content},
        headers={"If-Match": '"2"'},
    )
    assert edited.status_code == 200, edited.text
    final = api.post(f"/v1/drafts/{job['id']}/finalize", Role.REVIEWER, headers={"If-Match": '"3"'})
    assert final.status_code == 201, final.text
    imported = postmortem_data(
        id=IMPORTED,
        title="Checkout outage history: " + " | ".join(LINES[:12]),
        summary="Checkout failed when the database connection pool was exhausted. "
        + " ".join(LINES[12:]),
        services=["checkout-api", *short[:5]],
        action_items=[
            {"text": f"Rotate the credentials: {line}", "kind": "mitigate"} for line in LINES[:10]
        ],
    )
    assert api.post("/v1/postmortems", Role.REVIEWER, json=imported).status_code == 201
    api.services.retrieval.indexer.sync()
    return Leaky(api, incident, job["id"], final.json()["postmortem_id"])


def test_the_incident_as_stored_stays_raw_for_its_engineers(leaky: Leaky) -> None:
    """Redaction makes derived text; it never rewrites the evidence."""
    stored = leaky.api.get("/v1/incidents/inc-leaky").json()
    assert stored["title"] == leaky.incident["title"]
    assert stored["services"] == leaky.incident["services"]


def test_a_finalized_postmortem_holds_no_secret_anywhere_the_api_shows_it(leaky: Leaky) -> None:
    api, pm_id = leaky.api, leaky.postmortem_id
    listed = [i for i in api.get("/v1/postmortems").json()["items"] if i["id"] == pm_id]
    assert len(listed) == 1
    shown = {
        "postmortem": api.get(f"/v1/postmortems/{pm_id}").text,
        "list": json.dumps(listed),
        "markdown": api.get(f"/v1/postmortems/{pm_id}/export").text,
        "json": api.get(f"/v1/postmortems/{pm_id}/export", params={"format": "json"}).text,
        "action items": api.get("/v1/action-items", params={"postmortem_id": pm_id}).text,
        "search": api.get("/v1/search/similar", params={"q": "checkout", "k": 50}).text,
    }
    found = {where: leaks(text) for where, text in shown.items()}
    assert found == {where: [] for where in shown}
    pm = api.get(f"/v1/postmortems/{pm_id}").json()["postmortem"]
    assert pm["title"].startswith("Checkout down: ") and "SECRET_" in pm["title"]
    assert "checkout-api" in pm["services"] and "checkout" in pm["tags"]
    assert any("SECRET_" in s for s in pm["services"]) and any("SECRET_" in t for t in pm["tags"])
    assert any("old password is SECRET_" in a["text"] for a in pm["action_items"])


def test_similar_search_echoes_and_finds_only_redacted_text(leaky: Leaky) -> None:
    api = leaky.api
    similar = api.get("/v1/incidents/inc-leaky/similar", params={"k": 10})
    assert similar.status_code == 200 and leaks(similar.text) == []
    assert "SECRET_" in similar.json()["query"]
    query = "checkout database connection pool\n" + "\n".join(LINES)
    found = api.get("/v1/search/similar", params={"q": query, "k": 10})
    assert found.status_code == 200 and leaks(found.text) == []
    result = found.json()
    assert "SECRET_" in result["query"]
    assert IMPORTED in [h["postmortem_id"] for h in result["hits"]]  # history with secrets


def _signed_in(api: Api) -> Any:
    signed = api.client.post(
        "/ui/sign-in", data={"api_key": api.keys[Role.REVIEWER]}, follow_redirects=False
    )
    assert signed.status_code == 303
    return api.client


def test_pages_show_only_redacted_text(leaky: Leaky) -> None:
    client = _signed_in(leaky.api)
    pm_id = leaky.postmortem_id
    pages = [
        "/ui/incidents",
        "/ui/incidents/inc-leaky",
        "/ui/postmortems",
        f"/ui/postmortems/{pm_id}",
        f"/ui/postmortems/{pm_id}/export.md",
        "/ui/action-items",
        "/ui/postmortems?q=checkout database connection pool",
    ]
    found = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        found[path] = leaks(response.text)
    # The reviewer's own working draft shows their edit until it is finalized.
    draft = client.get(f"/ui/drafts/{leaky.draft_id}")
    found["draft"] = leaks(draft.text, SECRETS[:-1])
    assert found == {where: [] for where in found}
    listed = client.get("/ui/incidents").text
    assert "Checkout down: " in listed and "SECRET_" in listed
    board = html.unescape(client.get("/ui/action-items").text)
    assert "old password is SECRET_" in board and "Rotate the credentials: " in board


@pytest.mark.parametrize("line", [line for line in LINES if len(line) <= 200])
def test_a_search_query_typed_into_a_page_is_shown_redacted(leaky: Leaky, line: str) -> None:
    client = _signed_in(leaky.api)
    page = client.get("/ui/postmortems", params={"q": f"checkout {line}"})
    assert page.status_code == 200
    assert leaks(page.text) == []


def test_the_canaries_fit_the_fields_they_are_planted_in() -> None:
    assert len(" | ".join(LINES)) < 3_900  # a title is at most 4,000 characters
    assert len([line for line in LINES if len(line) <= 100]) >= 25
