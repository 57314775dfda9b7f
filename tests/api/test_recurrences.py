"""Recurrences through the API: proposed when a postmortem is finalized (or on request), seen
from both postmortems, confirmed or dismissed by a reviewer, flagged when a promised fix of the
past incident was still open; hostile input refused as problem+json."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from rca.errors import IndexUnavailable
from rca.store import audit
from rca.store.keys import Role
from tests.api.support import Api, draft_and_finalize
from tests.api.test_api import _finalize_a_draft_of, create
from tests.api.test_api_postmortems import assert_problem, import_pm, pm_body

PAST = "pm-old-pool"
NEW = "pm-new-pool"
POOL_CAUSE = "A pool size change left too few connections: the pool was exhausted at peak."


def _pair(api: Api) -> None:
    """A past pool-exhaustion postmortem and a later one of the same failure, and an unrelated
    one in between."""
    import_pm(api, pm_body(PAST, date="2024-03-01", root_causes=[POOL_CAUSE]))
    import_pm(
        api,
        pm_body(
            "pm-unrelated",
            date="2024-06-01",
            title="Marketing site certificate expired",
            services=["www"],
            summary="The TLS certificate of the marketing site expired on a Sunday.",
            root_causes=["Certificate renewal was manual and nobody owned the calendar."],
            action_items=[],
        ),
    )
    import_pm(
        api,
        pm_body(
            NEW,
            date="2025-05-10",
            title="Checkout timeouts: orders-db connection pool exhausted again",
            summary="Checkout timed out for 35 minutes: the orders-db connection pool ran out.",
            root_causes=["The connection pool was exhausted under a traffic peak."],
            action_items=[],
        ),
    )


def _links(api: Api, ident: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/postmortems/{ident}/recurrences")
    assert response.status_code == 200, response.text
    return list(response.json())


def _decide(api: Api, past: str, decision: str, role: Role = Role.REVIEWER) -> Any:
    path = f"/v1/postmortems/{NEW}/recurrences/{past}"
    return api.post(path, role, json={"decision": decision})


def test_a_recurrence_is_proposed_with_reasons_and_seen_from_both_sides(api: Api) -> None:
    _pair(api)
    proposed = api.post(f"/v1/postmortems/{NEW}/recurrences/propose", Role.REVIEWER)
    assert proposed.status_code == 200, proposed.text
    links = proposed.json()
    assert [link["past_postmortem_id"] for link in links] == [PAST]
    link = links[0]
    assert link["state"] == "proposed" and link["flagged"] is False
    assert "same service: checkout-api" in link["reasons"]
    assert any(r.startswith("same failure mode: ") for r in link["reasons"])
    assert link["reasons"][-1].startswith("similar incident #1")
    assert _links(api, PAST) == links  # the past postmortem sees the later one
    # The older postmortem never proposes the later one as its past.
    assert api.post(f"/v1/postmortems/{PAST}/recurrences/propose", Role.REVIEWER).json() == links


def test_confirming_records_the_past_fixes_still_open_and_flags_both(api: Api) -> None:
    _pair(api)
    api.post(f"/v1/postmortems/{NEW}/recurrences/propose", Role.REVIEWER)
    confirmed = _decide(api, PAST, "confirm")
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["state"] == "confirmed" and body["decided_by"] == "test reviewer"
    # "Document the rollback" was done; the other two were still open.
    assert body["open_actions"] == ["Load test pool changes", "Alert on pool saturation"]
    assert body["flagged"] is True
    assert _links(api, PAST)[0]["flagged"] and _links(api, NEW)[0]["flagged"]
    # Proposing again keeps the decision; dismissing clears the flag.
    again = api.post(f"/v1/postmortems/{NEW}/recurrences/propose", Role.REVIEWER).json()
    assert [link["state"] for link in again] == ["confirmed"]
    dismissed = _decide(api, PAST, "dismiss").json()
    assert (dismissed["state"], dismissed["open_actions"], dismissed["flagged"]) == (
        "dismissed",
        [],
        False,
    )
    trail = audit.entries(api.services.store.engine, "postmortem", NEW)
    assert [(e.action, e.actor) for e in trail][-2:] == [
        ("recurrence.confirmed", "test reviewer"),
        ("recurrence.dismissed", "test reviewer"),
    ]


def test_finalizing_a_draft_proposes_recurrences(api: Api) -> None:
    incident = create(api)
    history = pm_body(
        PAST,
        date="2025-01-10",
        title="Checkout 5xx after an orders database connection pool change",
        services=incident["services"],
        root_causes=["The connection pool was exhausted: too few connections for the load."],
    )
    import_pm(api, history)
    job = api.post(f"/v1/incidents/{incident['id']}/drafts", json={}).json()
    _, final = draft_and_finalize(api, job["id"], sections=None)
    assert api.services.store.get_postmortem(final["postmortem_id"]).postmortem.root_causes
    links = _links(api, final["postmortem_id"])
    assert PAST in [link["past_postmortem_id"] for link in links]
    assert all(link["state"] == "proposed" for link in links)


def test_a_failing_search_leaves_the_finalization_alone(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident = create(api)

    def broken(*_a: Any, **_k: Any) -> Any:
        raise IndexUnavailable("the index is being rebuilt")

    monkeypatch.setattr(api.services.retrieval.search, "search", broken)
    final = _finalize_a_draft_of(api, incident["id"])
    assert _links(api, final["postmortem_id"]) == []
    monkeypatch.undo()
    again = api.post(f"/v1/postmortems/{final['postmortem_id']}/recurrences/propose", Role.REVIEWER)
    assert again.status_code == 200, again.text


def test_bad_recurrence_requests_are_problems_and_change_nothing(api: Api) -> None:
    _pair(api)
    api.post(f"/v1/postmortems/{NEW}/recurrences/propose", Role.REVIEWER)
    assert_problem(api.get("/v1/postmortems/pm-nope/recurrences"), 404)
    assert_problem(api.post("/v1/postmortems/pm-nope/recurrences/propose", Role.REVIEWER), 404)
    assert_problem(_decide(api, "pm-unrelated", "confirm"), 404)  # never proposed
    assert_problem(_decide(api, PAST, "approve"), 422)
    assert_problem(_decide(api, PAST, "confirm", Role.ENGINEER), 403)
    assert_problem(api.post(f"/v1/postmortems/{NEW}/recurrences/propose", Role.ENGINEER), 403)
    assert_problem(api.get("/v1/postmortems/" + "x" * 129 + "/recurrences"), 422)
    hostile = {"decision": "confirm", "state": "confirmed", "open_actions": ["<script>"]}
    assert_problem(api.post(f"/v1/postmortems/{NEW}/recurrences/{PAST}", json=hostile), 403)
    not_json = api.post(
        f"/v1/postmortems/{NEW}/recurrences/{PAST}",
        Role.REVIEWER,
        content=b"\xff{",
        headers={"Content-Type": "application/json"},
    )
    assert_problem(not_json, 400)
    sneaky = api.post(f"/v1/postmortems/{NEW}/recurrences/{PAST}", Role.REVIEWER, json=hostile)
    assert_problem(sneaky, 422)  # only a decision; state and open actions are rca's to set
    self_link = api.post(
        f"/v1/postmortems/{NEW}/recurrences/{NEW}", Role.REVIEWER, json={"decision": "confirm"}
    )
    assert_problem(self_link, 404)
    assert [link["state"] for link in _links(api, NEW)] == ["proposed"]


def test_the_insights_count_confirmed_recurrences_per_service_and_failure_mode(
    api: Api,
) -> None:
    _pair(api)
    api.post(f"/v1/postmortems/{NEW}/recurrences/propose", Role.REVIEWER)
    window = {"since": "2024-01-01", "until": "2026-01-01"}
    pending = api.get("/v1/insights", params=window).json()["recurrences"]
    assert (pending["confirmed"], pending["proposed"], pending["rate"]) == (0, 1, 0.0)
    assert pending["items"][0]["state"] == "proposed"
    _decide(api, PAST, "confirm")
    found = api.get("/v1/insights", params=window).json()["recurrences"]
    assert (found["confirmed"], found["flagged"], found["proposed"]) == (1, 1, 0)
    assert found["rate"] == pytest.approx(1 / 3)
    checkout = next(r for r in found["by_service"] if r["key"] == "checkout-api")
    assert (checkout["postmortems"], checkout["recurrences"], checkout["rate"]) == (2, 1, 0.5)
    www = next(r for r in found["by_service"] if r["key"] == "www")
    assert (www["recurrences"], www["rate"]) == (0, 0.0)
    assert found["by_failure_mode"][0]["recurrences"] == 1
    assert found["by_failure_mode"][0]["name"] != found["by_failure_mode"][0]["key"]
    item = found["items"][0]
    assert (item["postmortem_id"], item["past_postmortem_id"], item["flagged"]) == (NEW, PAST, True)
    assert (item["postmortem_date"], item["past_postmortem_date"]) == ("2025-05-10", "2024-03-01")
    # Filters: another service, another severity, a range before the later postmortem.
    for params in ({"service": "www"}, {"severity": "SEV1"}, {"until": "2025-01-01"}):
        other = api.get("/v1/insights", params={**window, **params}).json()["recurrences"]
        assert (other["confirmed"], other["items"]) == (0, [])
    assert "recurrence_rate" in api.get("/v1/insights", params=window).json()["definitions"]
    csv_text = api.get("/v1/insights.csv", params={**window, "table": "recurrences"}).text
    assert csv_text.splitlines()[1].startswith(f"{NEW},2025-05-10,")
    rates = api.get("/v1/insights.csv", params={**window, "table": "recurrence_services"}).text
    assert "checkout-api,checkout-api,2,1,0.5" in rates.splitlines()


def test_recurrence_csv_cells_cannot_run_as_formulas(api: Api) -> None:
    _pair(api)
    import_pm(
        api,
        pm_body(
            "pm-formula",
            date="2025-06-01",
            title='=HYPERLINK("http://x")',
            root_causes=[POOL_CAUSE],
        ),
    )
    api.post("/v1/postmortems/pm-formula/recurrences/propose", Role.REVIEWER)
    window = {"since": "2024-01-01", "until": "2026-01-01", "table": "recurrences"}
    rows = list(csv.reader(io.StringIO(api.get("/v1/insights.csv", params=window).text)))
    titles = [r[2] for r in rows if r[0] == "pm-formula"]
    assert titles and all(t == '\'=HYPERLINK("http://x")' for t in titles)
