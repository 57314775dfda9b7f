"""Similar search asked again through the API: answered from the result kept while nothing
changed (a short read, not a request thread of its own), searched again once something did."""

from __future__ import annotations

from rca.domain import Incident
from rca.store.keys import Role
from rca.testing import FakeEmbedder
from tests.api.support import Api
from tests.api.test_api_postmortems import import_examples, import_pm, pm_body
from tests.factories import incident_data


def _queries(api: Api) -> int:
    """Query embeddings asked for so far."""
    embedder = api.services.retrieval.embedder
    assert isinstance(embedder, FakeEmbedder)
    return sum(1 for _count, kind in embedder.calls if kind == "query")


def _indexed(api: Api) -> None:
    """Index every revision waiting (a search's result is kept for the index's state, and
    indexing changes it), as `POST /v1/admin/index/sync` does."""
    assert api.post("/v1/admin/index/sync", Role.ADMIN).status_code == 200
    assert api.services.store.index_state.pending_count() == 0


def test_a_repeated_search_is_answered_as_before_until_a_postmortem_changes(api: Api) -> None:
    import_examples(api)
    _indexed(api)
    params = {"q": "orders database failover replica", "k": 3}
    first = api.get("/v1/search/similar", params=params)
    assert first.status_code == 200, first.text
    asked = _queries(api)
    again = api.get("/v1/search/similar", params=params)
    assert again.status_code == 200 and again.json() == first.json()
    assert _queries(api) == asked  # nothing embedded, nothing searched
    other = api.get("/v1/search/similar", params={**params, "mode": "lexical"})
    assert other.status_code == 200 and other.json()["mode"] == "lexical"

    body = pm_body()
    body["summary"] = "Orders database failover replica zebra."
    import_pm(api, body)
    _indexed(api)
    changed = api.get("/v1/search/similar", params=params)
    assert changed.status_code == 200 and _queries(api) == asked + 1
    assert "pm-test-1" in [h["postmortem_id"] for h in changed.json()["hits"]]


def test_an_incident_s_similar_postmortems_are_kept_too(api: Api) -> None:
    import_examples(api)
    _indexed(api)
    incident = Incident.model_validate(incident_data())
    created = api.post("/v1/incidents", json=incident.model_dump(mode="json"))
    assert created.status_code == 201, created.text
    path = f"/v1/incidents/{incident.id}/similar"
    first = api.get(path, params={"k": 3})
    assert first.status_code == 200, first.text and first.json()["hits"]
    asked = _queries(api)
    assert api.get(path, params={"k": 3}).json() == first.json() and _queries(api) == asked
    assert api.get(path, params={"k": 2}).json()["hits"] == first.json()["hits"][:2]
    assert api.get("/v1/incidents/inc-nope/similar").status_code == 404
    blank = api.get("/v1/search/similar", params={"q": "?!"})
    assert blank.status_code == 400  # no searchable words: refused, kept result or not
