"""Idempotent requests that die half-way (issue 16, finding 6): a retry with the same
Idempotency-Key replays the stored answer or runs again, never gets 409 for ever and never
stores the write twice."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from rca.domain import Incident
from rca.store.engine import idempotency_keys, write_transaction
from rca.store.idempotency import body_hash
from rca.store.keys import Role
from tests.api.support import INCIDENT_FILE, ROOT, Api

# The child serves a burst of idempotent creates and stalls inside the third, right after the
# store has written its incident, until the test kills it with SIGKILL.
_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from fastapi.testclient import TestClient
    from api.app import create_app
    from rca.store.records import Store
    from tests.api.support import api_settings

    data, key, bodies = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    real = Store.create_incident
    calls = []

    def create_incident(self, incident, source, actor="api"):
        saved = real(self, incident, source, actor)
        calls.append(incident.id)
        if len(calls) == 3:
            print("stored", flush=True)
            time.sleep(120)  # killed here
        return saved

    Store.create_incident = create_incident
    app = create_app(api_settings(data, warm_up=False), workers=0)
    with TestClient(app) as client:
        for n, body in enumerate(bodies):
            headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"burst-{n}"}
            client.post("/v1/incidents", json=body, headers=headers)
    """
)


def incident_without_id(**changes: Any) -> dict[str, Any]:
    body = {**json.loads(INCIDENT_FILE.read_text()), **changes}
    del body["id"]
    return body


def stored_incidents(api: Api) -> list[str]:
    return [i["id"] for i in api.get("/v1/incidents", params={"limit": 100}).json()["items"]]


def test_a_server_killed_during_a_burst_leaves_no_key_in_flight_and_no_duplicate(
    api: Api, tmp_path: Path
) -> None:
    bodies = [incident_without_id(title=f"Burst incident {n}") for n in range(5)]
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path), api.keys[Role.ENGINEER], json.dumps(bodies)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 120)
        assert ready and child.stdout.readline().strip() == "stored", "the child never stalled"
        os.kill(child.pid, signal.SIGKILL)  # in the middle of the third request
    finally:
        child.kill()
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    answers = [
        api.post("/v1/incidents", json=body, headers={"Idempotency-Key": f"burst-{n}"})
        for n, body in enumerate(bodies)
    ]
    assert [a.status_code for a in answers] == [201] * 5, [a.text for a in answers]
    replayed = [a.headers.get("idempotent-replayed") == "true" for a in answers]
    assert replayed == [True, True, False, False, False]  # answered before the kill: replayed
    assert sorted(stored_incidents(api)) == sorted(a.json()["id"] for a in answers)
    again = api.post("/v1/incidents", json=bodies[2], headers={"Idempotency-Key": "burst-2"})
    assert again.json() == answers[2].json() and again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("write", ["incident", "draft"])
def test_a_request_failing_after_its_write_stores_nothing_and_its_retry_stores_one(
    api: Api, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    incident = api.post("/v1/incidents", json=incident_without_id(title="Known")).json()
    target, name = (
        (api.services.store, "create_incident")
        if write == "incident"
        else (api.services.jobs, "submit")
    )
    real = getattr(target, name)

    def dies_after_writing(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise RuntimeError("the process died after the write")

    path, body = (
        ("/v1/incidents", incident_without_id())
        if write == "incident"
        else (f"/v1/incidents/{incident['id']}/drafts", {})
    )
    headers = {"Idempotency-Key": f"{write}-1"}
    monkeypatch.setattr(target, name, dies_after_writing)
    assert api.post(path, json=body, headers=headers).status_code == 500
    monkeypatch.setattr(target, name, real)
    retry = api.post(path, json=body, headers=headers)
    assert retry.status_code in (201, 202), retry.text
    if write == "incident":
        assert len(stored_incidents(api)) == 2  # "Known" and this one, once
    else:
        assert [j.id for j in api.services.jobs.for_incident(incident["id"])] == [
            retry.json()["id"]
        ]


def test_a_reservation_left_in_flight_by_a_dead_process_does_not_block_its_key(api: Api) -> None:
    body = incident_without_id()
    payload = Incident.model_validate(body).model_dump_json(exclude={"id"})
    principal = api.services.keys.authenticate(api.keys[Role.ENGINEER])
    assert principal is not None
    with write_transaction(api.services.store.engine) as conn:  # what a killed server left
        conn.execute(
            insert(idempotency_keys).values(
                principal=principal.key_id,
                key="orphan",
                request_hash=body_hash("POST", "/v1/incidents", payload.encode()),
                state="in_flight",
                created_at=datetime.now(UTC),
            )
        )
    retry = api.post("/v1/incidents", json=body, headers={"Idempotency-Key": "orphan"})
    assert retry.status_code == 201, retry.text
    replay = api.post("/v1/incidents", json=body, headers={"Idempotency-Key": "orphan"})
    assert replay.json() == retry.json() and replay.headers["idempotent-replayed"] == "true"
    assert stored_incidents(api) == [retry.json()["id"]]
