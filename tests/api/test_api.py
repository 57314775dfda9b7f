"""The HTTP API through the real app: auth and roles, incidents, idempotency, draft jobs,
review with versions, finalize, limits and errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from api.routes_misc import PUBLIC_ROUTES
from api.worker import DraftWorker
from rca.domain import Postmortem
from rca.store.jobs import DraftJobs
from rca.store.keys import Role
from tests.api.support import INCIDENT_FILE, Api, running_api
from tests.factories import postmortem_data

PROBLEM = "application/problem+json"


def incident_body(**changes: Any) -> dict[str, Any]:
    return {**json.loads(INCIDENT_FILE.read_text()), **changes}


def create(api: Api, **changes: Any) -> dict[str, Any]:
    response = api.post("/v1/incidents", json=incident_body(**changes))
    assert response.status_code == 201, response.text
    return dict(response.json())


def drafted(api: Api) -> dict[str, Any]:
    """An incident with a finished draft (the worker run in the test's thread)."""
    incident = create(api)
    job = api.post(f"/v1/incidents/{incident['id']}/drafts", json={}).json()
    assert DraftWorker(api.services, "test").run_once()
    response = api.get(f"/v1/drafts/{job['id']}")
    assert response.json()["status"] == "succeeded", response.json()
    return dict(response.json())


# --- authentication and roles ---------------------------------------------------------------


def test_every_route_is_denied_by_default(api: Api) -> None:
    open_routes = []
    for route in api.client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute) or route.path in PUBLIC_ROUTES:
            continue
        roles = [getattr(d.call, "required_role", None) for d in route.dependant.dependencies]
        if not any(roles):
            open_routes.append(route.path)
    assert open_routes == []


def test_missing_bad_revoked_and_expired_keys_get_401(api: Api) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"}):
        response = api.client.get("/v1/incidents", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Bearer")
    key, info = api.services.keys.create("soon gone", Role.ADMIN)
    assert api.client.get("/v1/incidents", headers={"Authorization": f"Bearer {key}"}).is_success
    api.services.keys.revoke(info.id)
    assert (
        api.client.get("/v1/incidents", headers={"Authorization": f"Bearer {key}"}).status_code
        == 401
    )
    expiring, _ = api.services.keys.create("brief", Role.ADMIN, timedelta(milliseconds=50))
    time.sleep(0.1)
    response = api.client.get("/v1/incidents", headers={"Authorization": f"Bearer {expiring}"})
    assert response.status_code == 401
    wrong_secret = key[:-4] + "AAAA"
    response = api.client.get("/v1/incidents", headers={"Authorization": f"Bearer {wrong_secret}"})
    assert response.status_code == 401


def test_roles_limit_what_a_key_reaches(api: Api) -> None:
    job = drafted(api)
    review = f"/v1/drafts/{job['id']}/suggestions/s1/review"
    body = {"decision": "accept"}
    response = api.post(review, Role.ENGINEER, json=body, headers={"If-Match": '"1"'})
    assert response.status_code == 403 and response.headers["content-type"] == PROBLEM
    assert api.get("/metrics", Role.REVIEWER).status_code == 403
    assert api.get("/metrics", Role.ADMIN).status_code == 200
    assert api.get(f"/v1/drafts/{job['id']}/audit", Role.ENGINEER).status_code == 403
    assert api.client.get("/healthz").status_code == 200  # probes need no key


# --- incidents and idempotency --------------------------------------------------------------


def test_create_get_and_list_incidents_with_cursors(api: Api) -> None:
    stored = create(api)
    assert api.get(f"/v1/incidents/{stored['id']}").json() == stored
    for n in range(5):
        create(api, id=f"inc-page-{n}", started_at=f"2026-01-1{n}T10:00:00Z", severity="SEV3")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/incidents", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and len(set(seen)) == 6
    assert seen[:2] == [stored["id"], "inc-page-4"]  # newest first
    only = api.get("/v1/incidents", params={"severity": "SEV2"}).json()["items"]
    assert [i["id"] for i in only] == [stored["id"]]
    assert api.get("/v1/incidents", params={"limit": 101}).status_code == 422
    assert api.get("/v1/incidents", params={"cursor": "!!"}).status_code == 400
    missing = api.get("/v1/incidents/nope")
    assert missing.status_code == 404 and missing.json()["status"] == 404


def test_a_bad_incident_is_a_problem_with_every_error_and_stores_nothing(api: Api) -> None:
    body = incident_body(severity="SEV9", surprise=1)
    response = api.post("/v1/incidents", json=body)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    locations = {e["location"] for e in response.json()["errors"]}
    assert any("severity" in loc for loc in locations) and any(
        "surprise" in loc for loc in locations
    )
    assert api.get("/v1/incidents").json()["items"] == []
    other = incident_body(title="Another title")
    create(api)
    clash = api.post("/v1/incidents", json=other)
    assert clash.status_code == 409


def test_idempotent_create_replays_and_refuses_another_body(api: Api) -> None:
    headers = {"Idempotency-Key": "create-1"}
    body = incident_body()
    del body["id"]
    first = api.post("/v1/incidents", json=body, headers=headers)
    again = api.post("/v1/incidents", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(api.get("/v1/incidents").json()["items"]) == 1  # one incident, not two
    changed = api.post("/v1/incidents", json={**body, "title": "other"}, headers=headers)
    assert changed.status_code == 422, changed.text
    assert "different request" in changed.json()["detail"]


def test_concurrent_idempotent_requests_create_one_incident(api: Api) -> None:
    body = incident_body()
    del body["id"]
    results: list[int] = []

    def send() -> None:
        response = api.post("/v1/incidents", json=body, headers={"Idempotency-Key": "race"})
        results.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) <= {201, 409} and results.count(201) >= 1
    assert len(api.get("/v1/incidents").json()["items"]) == 1


# --- drafts, review and finalize ------------------------------------------------------------


def test_a_draft_job_runs_and_streams_its_progress(api: Api) -> None:
    incident = create(api)
    queued = api.post(f"/v1/incidents/{incident['id']}/drafts", json={})
    assert queued.status_code == 202
    job = queued.json()
    assert job["status"] == "queued" and queued.headers["location"] == f"/v1/drafts/{job['id']}"
    assert DraftWorker(api.services, "test").run_once()
    done = api.get(f"/v1/drafts/{job['id']}")
    body = done.json()
    assert body["status"] == "succeeded" and body["progress"] == 1.0
    assert done.headers["etag"] == '"1"'
    assert body["draft"]["model"] == "fake/analyst" and body["draft"]["suggestions"]
    stream = api.get(f"/v1/drafts/{job['id']}/events")
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "event: done" in stream.text
    listed = api.get(f"/v1/incidents/{incident['id']}/drafts").json()
    assert [d["id"] for d in listed] == [job["id"]]
    trail = api.get(f"/v1/drafts/{job['id']}/audit", Role.REVIEWER).json()
    assert [e["action"] for e in trail] == ["draft.requested", "draft.created"]
    assert trail[1]["detail"]["prompt_version"] == "draft@5"
    assert "prompt_tokens" in trail[1]["detail"] and "latency_s" in trail[1]["detail"]


def test_unknown_models_and_incidents_are_refused(api: Api) -> None:
    incident = create(api)
    bad = api.post(f"/v1/incidents/{incident['id']}/drafts", json={"model": "openai/gpt-9"})
    assert bad.status_code == 400 and "not configured" in bad.json()["detail"]
    assert api.post("/v1/incidents/nope/drafts", json={}).status_code == 404
    assert api.get("/v1/models").json()["models"] == ["fake/analyst", "baseline"]


def test_review_needs_the_current_version_and_finalize_makes_a_postmortem(api: Api) -> None:
    job = drafted(api)
    base = f"/v1/drafts/{job['id']}/suggestions"
    suggestions = {s["section"]: s["id"] for s in job["draft"]["suggestions"]}
    accept = {"decision": "accept"}
    missing = api.post(f"{base}/s1/review", Role.REVIEWER, json=accept)
    assert missing.status_code == 428
    ok = api.post(f"{base}/s1/review", Role.REVIEWER, json=accept, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"'
    assert ok.json()["suggestion"]["status"] == "accepted"
    stale = api.post(
        f"{base}/{suggestions['impact']}/review",
        Role.REVIEWER,
        json={"decision": "reject"},
        headers={"If-Match": '"1"'},
    )
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    edit = {"decision": "edit", "content": "Human error: the engineer forgot to size the pool"}
    edited = api.post(
        f"{base}/{suggestions['root_cause']}/review",
        Role.REVIEWER,
        json=edit,
        headers={"If-Match": '"2"'},
    )
    assert edited.status_code == 200
    phrases = [f["phrase"].lower() for f in edited.json()["flags"]]
    assert "human error" in phrases
    bad_shape = api.post(
        f"{base}/{suggestions['action_item']}/review",
        Role.REVIEWER,
        json={"decision": "edit", "content": "just a string"},
        headers={"If-Match": '"3"'},
    )
    assert bad_shape.status_code == 400
    final = api.post(f"/v1/drafts/{job['id']}/finalize", Role.REVIEWER, headers={"If-Match": '"3"'})
    assert final.status_code == 201, final.text
    result = final.json()
    stored = api.services.store.get_postmortem(result["postmortem_id"]).postmortem
    assert stored.root_causes == [edit["content"]]
    assert stored.incident_id == job["incident_id"]
    after = api.post(f"{base}/s1/review", Role.REVIEWER, json=accept, headers={"If-Match": '"4"'})
    assert after.status_code == 409  # a finalized draft is immutable
    trail = [e["action"] for e in api.get(f"/v1/drafts/{job['id']}/audit", Role.REVIEWER).json()]
    assert trail[-3:] == ["suggestion.accepted", "suggestion.edited", "draft.finalized"]
    # The finalized postmortem is history now: similar search finds it.
    hits = api.get(f"/v1/incidents/{job['incident_id']}/similar").json()["hits"]
    assert result["postmortem_id"] in [h["postmortem_id"] for h in hits]


def test_two_reviewers_editing_one_suggestion_one_wins_the_other_gets_412(api: Api) -> None:
    job = drafted(api)
    path = f"/v1/drafts/{job['id']}/suggestions/s1/review"
    outcomes: dict[str, Any] = {}
    barrier = threading.Barrier(2)

    def edit(who: str) -> None:
        barrier.wait()
        outcomes[who] = api.post(
            path,
            Role.REVIEWER,
            json={"decision": "edit", "content": f"Summary by {who}"},
            headers={"If-Match": '"1"'},
        )

    threads = [threading.Thread(target=edit, args=(w,)) for w in ("ana", "ben")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in outcomes.values())
    assert codes == [200, 412]
    winner = next(w for w, r in outcomes.items() if r.status_code == 200)
    current = api.get(f"/v1/drafts/{job['id']}").json()
    assert current["version"] == 2
    assert current["draft"]["suggestions"][0]["content"] == f"Summary by {winner}"


def test_a_killed_worker_s_job_is_picked_up_again_or_failed_retryable(api: Api) -> None:
    api.services.jobs = DraftJobs(
        api.services.store.engine, lease=timedelta(milliseconds=100), max_attempts=2
    )
    incident = create(api)
    job = api.post(f"/v1/incidents/{incident['id']}/drafts", json={}).json()
    assert api.services.jobs.claim("dies-mid-job") is not None  # and never reports again
    time.sleep(0.2)
    assert DraftWorker(api.services, "survivor").run_once()
    done = api.get(f"/v1/drafts/{job['id']}").json()
    assert done["status"] == "succeeded" and done["attempts"] == 2
    second = api.post(f"/v1/incidents/{incident['id']}/drafts", json={}).json()
    api.services.jobs.claim("dies-1")
    time.sleep(0.2)
    api.services.jobs.claim("dies-2")
    time.sleep(0.2)
    api.services.jobs.reap()
    failed = api.get(f"/v1/drafts/{second['id']}").json()
    assert failed["status"] == "failed" and failed["retryable"] is True
    assert "lease expired" in failed["error"]


@pytest.fixture
def small_queue_api(tmp_path: Path) -> Iterator[Api]:
    yield from running_api(tmp_path, max_queued_drafts=1)


def test_a_full_queue_answers_429_with_retry_after(small_queue_api: Api) -> None:
    api = small_queue_api
    incident = create(api)
    assert api.post(f"/v1/incidents/{incident['id']}/drafts", json={}).status_code == 202
    busy = api.post(f"/v1/incidents/{incident['id']}/drafts", json={})
    assert busy.status_code == 429 and busy.headers["retry-after"] == "30"


# --- limits and errors ----------------------------------------------------------------------


def test_bodies_over_2_mib_get_413_however_they_are_sent(api: Api) -> None:
    big = b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    auth = api.headers(Role.ENGINEER, **{"Content-Type": "application/json"})
    declared = api.client.post("/v1/incidents", content=big, headers=auth)
    assert declared.status_code == 413 and declared.headers["content-type"] == PROBLEM

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    chunked = api.client.post("/v1/incidents", content=chunks(), headers=auth)
    assert chunked.status_code == 413
    assert api.get("/v1/incidents").json()["items"] == []


def test_an_unexpected_error_is_a_500_problem_without_details(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(_ident: str) -> None:
        raise RuntimeError("AKIAJ7QX2M4NZB8RT5WE leaked in a message")

    monkeypatch.setattr(api.services.store, "get_incident", boom)
    response = api.get("/v1/incidents/x")
    assert response.status_code == 500 and response.headers["content-type"] == PROBLEM
    assert "AKIA" not in response.text and "Traceback" not in response.text
    assert "error id" in response.json()["detail"]


def test_health_readiness_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz").json()
    assert ready["checks"]["store"] == "ok" and ready["checks"]["model"].startswith("configured")
    api.get("/v1/incidents")
    text = api.get("/metrics", Role.ADMIN).text
    assert 'rca_http_requests_total{method="GET",route="/v1/incidents",status="200"}' in text
    assert 'rca_draft_jobs{status="queued"} 0' in text


def _finalize_a_draft_of(api: Api, incident_id: str, summary: str | None = None) -> dict[str, Any]:
    """Draft `incident_id`, accept its summary (or edit it to `summary`), finalize; the
    finalize result."""
    job = api.post(f"/v1/incidents/{incident_id}/drafts", json={}).json()
    assert DraftWorker(api.services, "test").run_once()
    draft = api.get(f"/v1/drafts/{job['id']}").json()
    suggestion = next(s["id"] for s in draft["draft"]["suggestions"] if s["section"] == "summary")
    review = f"/v1/drafts/{job['id']}/suggestions/{suggestion}/review"
    decision = {"decision": "edit", "content": summary} if summary else {"decision": "accept"}
    accepted = api.post(review, Role.REVIEWER, json=decision, headers={"If-Match": '"1"'})
    assert accepted.status_code == 200, accepted.text
    final = api.post(f"/v1/drafts/{job['id']}/finalize", Role.REVIEWER, headers={"If-Match": '"2"'})
    assert final.status_code == 201, final.text
    return dict(final.json())


def test_finalizing_never_revises_another_incidents_postmortem(api: Api) -> None:
    """Issue 16, finding 3: the postmortem id was `pm-` + the incident id cut at 128
    characters, so an incident named like a history postmortem overwrote it."""
    history = Postmortem.model_validate(
        postmortem_data(id="pm-2023-06-internal-dns-outage", incident_id="inc-other")
    )
    api.services.store.save_postmortem(history, "test")
    create(api, id="2023-06-internal-dns-outage")
    first = _finalize_a_draft_of(api, "2023-06-internal-dns-outage")
    assert first["postmortem_id"] != history.id
    kept = api.services.store.get_postmortem(history.id)
    assert kept.latest_revision == 1 and kept.postmortem == history
    # A later draft of the same incident revises the postmortem finalized from it.
    second = _finalize_a_draft_of(api, "2023-06-internal-dns-outage", "A revised summary.")
    assert second["postmortem_id"] == first["postmortem_id"]
    assert api.services.store.get_postmortem(first["postmortem_id"]).latest_revision == 2
    # Two long incident ids that share their first 125 characters get two postmortems.
    stem = "inc-" + "x" * 120  # 128 characters with the suffix: "pm-" + it is too long
    ids = [f"{stem}-one", f"{stem}-two"]
    for ident in ids:
        create(api, id=ident)
    made = {_finalize_a_draft_of(api, ident)["postmortem_id"] for ident in ids}
    assert len(made) == 2 and all(len(m) <= 128 for m in made)
    for ident in made:
        stored = api.services.store.get_postmortem(ident).postmortem
        assert stored.incident_id in ids


def test_readiness_of_a_split_model_needs_both_halves(api: Api) -> None:
    from api.routes_misc import _model_check

    hosted = "openai/gpt-4o-mini"
    assert _model_check(f"{hosted}+{hosted}", api.services).startswith("configured")
    unknown = _model_check(f"{hosted}+local/qwen2.5-coder-99b", api.services)
    assert unknown == "unavailable: unknown embedded model"
    missing = _model_check(f"local/qwen2.5-coder-1.5b+{hosted}", api.services)
    assert missing == "unavailable: run `rca model pull`"  # nothing pulled in tmp data dir
