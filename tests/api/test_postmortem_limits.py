"""Postmortem lists have ceilings in the API too (issue 16, finding 8): a causal chain over
`MAX_CHAIN_NODES` is a 422 that says the limit and stores nothing; one an older version stored
still shows, cut to the ceiling with a note."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from rca.domain.postmortem import MAX_CHAIN_NODES
from rca.store.keys import Role
from tests.api.support import Api
from tests.factories import postmortem_data
from tests.support import dump

PROBLEM = "application/problem+json"


def long_chain(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"n{i}",
            "kind": "cause",
            "text": f"step {i}",
            "leads_to": [f"n{i + 1}"] if i + 1 < n else [],
        }
        for i in range(n)
    ]


def test_a_chain_over_the_cap_is_a_422_saying_the_limit_and_stores_nothing(api: Api) -> None:
    before = dump(api.services.store)
    body = postmortem_data(id="pm-big", causal_chain=long_chain(MAX_CHAIN_NODES + 1))
    response = api.post("/v1/postmortems", role=Role.REVIEWER, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    [error] = response.json()["errors"]
    assert error["location"] == "body.causal_chain"
    assert f"at most {MAX_CHAIN_NODES} nodes, this one has {MAX_CHAIN_NODES + 1}" in error["reason"]
    assert dump(api.services.store) == before
    assert api.get("/v1/postmortems/pm-big").status_code == 404

    at_cap = postmortem_data(id="pm-big", causal_chain=long_chain(MAX_CHAIN_NODES))
    assert api.post("/v1/postmortems", role=Role.REVIEWER, json=at_cap).status_code == 201


def test_a_chain_stored_over_the_cap_still_shows_cut_to_the_cap(api: Api) -> None:
    document = postmortem_data(id="pm-old-big", causal_chain=long_chain(5_000))
    stamp = "2026-01-21 00:00:00.000000"
    with api.services.store.engine.begin() as conn:  # as an older version stored it
        conn.execute(
            text(
                "INSERT INTO postmortems (id, latest_revision, title, date, severity, "
                "incident_id, created_at, updated_at) VALUES ('pm-old-big', 1, :title, "
                "'2025-04-09', 'SEV3', NULL, :now, :now)"
            ),
            {"title": document["title"], "now": stamp},
        )
        conn.execute(
            text(
                "INSERT INTO postmortem_revisions (postmortem_id, revision, content_hash, "
                "document, source, created_at) VALUES ('pm-old-big', 1, 'x', :document, 'old', "
                ":now)"
            ),
            {"document": json.dumps(document), "now": stamp},
        )
    got = api.get("/v1/postmortems/pm-old-big")
    assert got.status_code == 200, got.text
    assert len(got.json()["postmortem"]["causal_chain"]) == MAX_CHAIN_NODES
    assert api.client.post("/ui/sign-in", data={"api_key": api.keys[Role.ENGINEER]}).is_success
    page = api.client.get("/ui/postmortems/pm-old-big")
    assert page.status_code == 200, page.text
    assert "5000 nodes stored, more than 300; the rest was left out" in page.text
    assert page.text.count('class="node node-cause"') == MAX_CHAIN_NODES
