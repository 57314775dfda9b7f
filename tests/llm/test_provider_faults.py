"""Provider faults through the real HTTP path: rca configured with `RCA_LLM__MODEL=openai/...`
and `RCA_LLM__API_BASE` pointing at a scripted OpenAI-compatible server on loopback
(`tests/llm/fault_server.py`), with a fallback model.

The bound on attempts: one call is at most `(1 + max_retries)` requests per model, the model
and then each fallback, `(1 + 1) * 2 = 4` here; a draft job whose provider answers nothing
stops after the first stage of questions (trigger and lessons): `2 * 4 = 8` requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.worker import DraftWorker
from rca.config import Settings
from rca.domain import SuggestionOrigin
from rca.llm import LlmClient, ModelCallFailed, ScriptedModel, client_from_settings
from rca.llm.provider_errors import retry_after_s
from rca.store.keys import Role
from rca.testing import fake_analyst
from tests.api.support import INCIDENT_FILE, Api
from tests.llm.fault_server import (
    Fault,
    FaultServer,
    hang,
    malformed,
    no_choices,
    ok,
    rate_limited,
    status,
    truncated,
)

TIMEOUT_S = 1.0
BACKOFF_S = 0.1
MAX_WAIT_S = 2.0
SLACK_S = 1.5
"""Leeway on upper bounds: litellm's first error in a process takes it up to a second."""
HI = [{"role": "user", "content": "hello"}]


def configure(monkeypatch: pytest.MonkeyPatch, server: FaultServer) -> None:
    """rca's settings as an operator would set them, in the environment."""
    for name, value in {
        "RCA_LLM__MODEL": "openai/primary",
        "RCA_LLM__FALLBACKS": '["openai/backup"]',
        "RCA_LLM__API_BASE": server.url,
        "RCA_LLM__TIMEOUT_S": str(TIMEOUT_S),
        "RCA_LLM__MAX_RETRIES": "1",
        "RCA_LLM__BACKOFF_S": str(BACKOFF_S),
        "RCA_LLM__MAX_WAIT_S": str(MAX_WAIT_S),
        "OPENAI_API_KEY": "sk-dummy-key-for-the-fault-server",
    }.items():
        monkeypatch.setenv(name, value)


def client(monkeypatch: pytest.MonkeyPatch, server: FaultServer, tmp_path: Path) -> LlmClient:
    configure(monkeypatch, server)
    return client_from_settings(Settings(data_dir=tmp_path))


def asked(server: FaultServer) -> list[str]:
    return [seen.model for seen in server.requests()]


# --- one call: retries, Retry-After, timeouts, unusable answers, fallbacks --------------------


def test_a_rate_limit_is_retried_no_sooner_than_retry_after(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = {"primary": [rate_limited(1), ok("after the wait")], "backup": [ok("unused")]}
    with FaultServer(script) as server:
        done = client(monkeypatch, server, tmp_path).complete(HI)
    assert (done.text, done.model) == ("after the wait", "openai/primary")
    assert asked(server) == ["primary", "primary"]
    [gap] = server.gaps("primary")
    assert gap >= 1.0, "waited what Retry-After said, not the backoff"
    assert [(r.attempt, r.ok) for r in done.records] == [(1, False), (2, True)]
    assert (done.records[0].error or "").startswith("RateLimitError: ")


def test_a_retry_after_beyond_the_cap_is_not_waited_for_the_fallback_answers_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = {"primary": [rate_limited(3600)], "backup": [ok("from the fallback")]}
    with FaultServer(script) as server:
        done = client(monkeypatch, server, tmp_path).complete(HI)
    assert (done.text, done.model) == ("from the fallback", "openai/backup")
    assert asked(server) == ["primary", "backup"], "no retry into a wait of an hour"
    assert server.arrivals("backup")[0] < BACKOFF_S, "nor any wait before the fallback"
    assert "(Retry-After 3600 s; rca waits 2)" in (done.records[0].error or "")


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (status(500), "InternalServerError: OpenAIException - scripted 500"),
        (status(503), "ServiceUnavailableError: OpenAIException - scripted 503"),
        (malformed(), "InternalServerError: OpenAIException - error - Expecting value"),
        (
            truncated(),
            "InternalServerError: OpenAIException - Connection error. (peer closed connection"
            " without sending complete message body (received ",
        ),
        (no_choices(), "UnusableAnswer: the provider answered without a choice"),
        (ok("   "), "UnusableAnswer: the provider answered without text"),
    ],
    ids=["500", "503", "malformed-json", "truncated-body", "no-choices", "blank-text"],
)
def test_a_failing_primary_is_retried_once_after_the_backoff_then_the_fallback_answers(
    fault: Fault, error: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with FaultServer({"primary": [fault], "backup": [ok("from the fallback")]}) as server:
        done = client(monkeypatch, server, tmp_path).complete(HI)
    assert (done.text, done.model) == ("from the fallback", "openai/backup")
    assert asked(server) == ["primary", "primary", "backup"]  # 1 + max_retries, then the next
    [gap] = server.gaps("primary")
    assert gap >= BACKOFF_S
    errors = [r.error or "" for r in done.records if not r.ok]
    assert len(errors) == 2 and all(e.startswith(error) for e in errors), errors
    assert not [e for e in errors if "Received response" in e or "Traceback" in e]


def test_a_hanging_provider_is_cut_at_the_timeout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = {"primary": [hang(30)], "backup": [ok("from the fallback")]}
    with FaultServer(script) as server:
        done = client(monkeypatch, server, tmp_path).complete(HI)
    assert done.model == "openai/backup" and asked(server) == ["primary", "primary", "backup"]
    # Two attempts cut at the timeout, with the backoff between them: then the fallback.
    _, retried, fallback = server.arrivals()
    assert TIMEOUT_S + BACKOFF_S <= retried < TIMEOUT_S + BACKOFF_S + SLACK_S
    assert 2 * TIMEOUT_S + BACKOFF_S <= fallback < 2 * TIMEOUT_S + BACKOFF_S + 2 * SLACK_S
    failed = [r for r in done.records if not r.ok]
    assert [r.error.split(":")[0] for r in failed if r.error] == ["Timeout", "Timeout"]
    assert all(TIMEOUT_S * 0.9 <= r.latency_s < TIMEOUT_S + 1.0 for r in failed)


def test_when_every_model_fails_the_attempts_stay_bounded_and_the_error_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = {"primary": [status(503)], "backup": [rate_limited(1)]}
    with FaultServer(script) as server, pytest.raises(ModelCallFailed) as caught:
        client(monkeypatch, server, tmp_path).complete(HI)
    assert asked(server) == ["primary", "primary", "backup", "backup"]  # (1 + 1) * 2
    assert server.gaps("backup")[0] >= 1.0  # its Retry-After honoured too
    assert server.arrivals()[-1] < BACKOFF_S + 1.0 + 2 * SLACK_S
    assert str(caught.value) == (
        "every model failed (openai/primary, openai/backup); "
        "last error: RateLimitError: OpenAIException - scripted 429"
    )


def test_neither_litellm_nor_the_openai_sdk_retries_behind_rca(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with FaultServer({"primary": [status(500)], "backup": [status(503)]}) as server:
        configure(monkeypatch, server)
        monkeypatch.setenv("RCA_LLM__MAX_RETRIES", "0")
        llm = client_from_settings(Settings(data_dir=tmp_path))
        with pytest.raises(ModelCallFailed):
            llm.complete(HI)
    assert asked(server) == ["primary", "backup"]


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_in_seconds_or_milliseconds(
    headers: dict[str, str], wait: float | None
) -> None:
    assert retry_after_s(_rate_limit(headers)) == wait


def test_retry_after_may_be_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    wait = retry_after_s(_rate_limit({"retry-after": when}))
    assert wait is not None and 88 <= wait <= 90
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=90), usegmt=True)
    assert retry_after_s(_rate_limit({"retry-after": past})) == 0.0


class _RateLimited(Exception):
    """What litellm raises for a 429, as far as `retry_after_s` cares: the HTTP response."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("slow down")
        self.response = httpx.Response(429, headers=headers)


def _rate_limit(headers: dict[str, str]) -> Exception:
    return _RateLimited(headers)


# --- a draft job through the API --------------------------------------------------------------


@pytest.fixture
def api_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """Starts the real app configured (from the environment) against a fault server."""
    made: list[TestClient] = []

    def start(server: FaultServer) -> Api:
        configure(monkeypatch, server)
        settings = Settings(
            data_dir=tmp_path / "data", retrieval={"embedder": "fake"}, api={"warm_up": False}
        )
        test_client = TestClient(create_app(settings, workers=0), raise_server_exceptions=False)
        made.append(test_client.__enter__())
        services = test_client.app.state.services  # type: ignore[attr-defined]
        keys = {role: services.keys.create(f"test {role.value}", role)[0] for role in Role}
        return Api(test_client, services, keys, ScriptedModel())

    yield start
    for test_client in made:
        test_client.__exit__(None, None, None)


def run_job(api: Api) -> dict[str, Any]:
    incident = api.post("/v1/incidents", json=json.loads(INCIDENT_FILE.read_text())).json()
    job = api.post(f"/v1/incidents/{incident['id']}/drafts", json={}).json()
    assert job["model"] == "openai/primary"
    assert DraftWorker(api.services, "test").run_once()
    return dict(api.get(f"/v1/drafts/{job['id']}").json())


def test_a_draft_job_is_written_by_the_fallback_when_the_primary_is_down(api_with: Any) -> None:
    script: dict[str, Sequence[Fault]] = {"primary": [status(503)], "backup": [ok(fake_analyst)]}
    with FaultServer(script) as server:
        body = run_job(api_with(server))
    assert body["status"] == "succeeded", body["error"]
    calls = body["draft"]["usage"]["calls"]
    assert {c["model"] for c in calls if c["ok"]} == {"openai/backup"}
    assert not [c for c in calls if c["model"] == "openai/primary" and c["ok"]]
    origins = {s["origin"] for s in body["draft"]["suggestions"]}
    assert SuggestionOrigin.MODEL.value in origins
    questions = len(server.requests("backup"))  # each answered at its first attempt
    assert len(server.requests("primary")) == 2 * questions  # 1 + max_retries each


@pytest.mark.parametrize(
    ("faults", "requests"),
    [
        ({"primary": [status(503)], "backup": [truncated()]}, 8),
        # A Retry-After beyond the cap is not waited for: one request at the backup, not two.
        ({"primary": [malformed()], "backup": [rate_limited(3600)]}, 6),
    ],
    ids=["503-then-truncated", "malformed-then-rate-limited-for-an-hour"],
)
def test_a_draft_job_whose_provider_answers_nothing_fails_retryable_and_stores_no_draft(
    api_with: Any, faults: dict[str, Sequence[Fault]], requests: int
) -> None:
    with FaultServer(faults) as server:
        api = api_with(server)
        body = run_job(api)
    assert body["status"] == "failed" and body["retryable"] is True
    assert body["draft"] is None
    error = body["error"]
    assert error.startswith(
        f"the model provider failed: no answer from openai/primary, openai/backup in {requests}"
        " attempts; last error: "
    )
    assert error.endswith("Nothing was drafted; try again later")
    assert "Traceback" not in error and ".py" not in error
    # Bounded: the first stage's two questions (trigger, lessons), each tried (1 + 1) times at
    # each of the two models; then no further question is asked.
    assert len(server.requests()) == requests
    # What a reader may see of a failed job is what code found, never model output.
    partial = body["partial"]
    assert partial is None or all(s["origin"] != "model" for s in partial["suggestions"])
    listed = api.get(f"/v1/incidents/{body['incident_id']}/drafts").json()
    assert [d["status"] for d in listed] == ["failed"]
    trail = api.get(f"/v1/drafts/{body['id']}/audit", Role.REVIEWER).json()
    assert "draft.created" not in [e["action"] for e in trail]
