"""The draft queue's caps through the API (issue 16, finding 7): concurrent submissions never
pass the queue's cap nor a key's share of it, and one key at its cap leaves room for others."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from rca.store.jobs import JobStatus
from rca.store.keys import Role
from tests.api.support import INCIDENT_FILE, Api, running_api

PROBLEM = "application/problem+json"


def queued_incident(api: Api) -> str:
    response = api.post("/v1/incidents", json=json.loads(INCIDENT_FILE.read_text()))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def engineer_keys(api: Api, count: int) -> list[str]:
    return [api.services.keys.create(f"engineer {n}", Role.ENGINEER)[0] for n in range(count)]


def submit_together(api: Api, path: str, keys: list[str]) -> list[tuple[str, Any]]:
    """POST `path` once per entry of `keys`, all threads released at once; (key, response)."""
    barrier = threading.Barrier(len(keys))
    answers: list[tuple[str, Any]] = []

    def submit(key: str) -> None:
        barrier.wait()
        response = api.client.post(path, json={}, headers={"Authorization": f"Bearer {key}"})
        answers.append((key, response))

    threads = [threading.Thread(target=submit, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_draft_requests_never_pass_the_queue_cap(tmp_path: Path) -> None:
    for api in running_api(tmp_path, max_queued_drafts=10, max_queued_drafts_per_key=100):
        path = f"/v1/incidents/{queued_incident(api)}/drafts"
        answers = submit_together(api, path, engineer_keys(api, 1) * 100)
        codes = Counter(response.status_code for _, response in answers)
        assert codes == {202: 10, 429: 90}
        assert api.services.jobs.counts()[JobStatus.QUEUED] == 10


def test_concurrent_draft_requests_of_several_keys_respect_both_caps(tmp_path: Path) -> None:
    for api in running_api(tmp_path, max_queued_drafts=8, max_queued_drafts_per_key=2):
        path = f"/v1/incidents/{queued_incident(api)}/drafts"
        keys = engineer_keys(api, 3)
        answers = submit_together(api, path, keys * 10)
        accepted = Counter(key for key, response in answers if response.status_code == 202)
        assert accepted == dict.fromkeys(keys, 2)  # 6: each key's share, under the queue's 8
        assert api.services.jobs.counts()[JobStatus.QUEUED] == 6
        late = api.client.post(path, json={}, headers=_auth(engineer_keys(api, 1)[0]))
        assert late.status_code == 202  # a key with nothing waiting still gets in


def test_a_key_at_its_cap_gets_429_and_another_key_still_queues(tmp_path: Path) -> None:
    for api in running_api(tmp_path, max_queued_drafts=20, max_queued_drafts_per_key=2):
        path = f"/v1/incidents/{queued_incident(api)}/drafts"
        first, second = engineer_keys(api, 2)
        for _ in range(2):
            assert api.client.post(path, json={}, headers=_auth(first)).status_code == 202
        refused = api.client.post(path, json={}, headers=_auth(first))
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM
        assert refused.headers["retry-after"] == "30"
        detail = refused.json()["detail"]
        assert "this API key already has 2 drafts waiting" in detail
        assert "RCA_API__MAX_QUEUED_DRAFTS_PER_KEY" in detail
        assert api.client.post(path, json={}, headers=_auth(second)).status_code == 202


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
