"""`/metrics` with prometheus-client: what it counts, with bounded labels, in one process (the
app in the test). Across processes: `test_metrics_processes.py`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import BaseRoute

from api import metrics
from api.webhook_sender import WebhookSender
from api.worker import DraftWorker
from rca.domain import Postmortem
from rca.store.integrations import IntegrationKind
from rca.store.keys import Role
from rca.store.webhooks import RetryPolicy, WebhookEvent, Webhooks
from tests.api.receiver import Receiver
from tests.api.support import INCIDENT_FILE, Api, free_port
from tests.api.test_webhooks import outbound_api, queue, subscribe
from tests.factories import postmortem_data
from tests.support import ROOT

ALERT = ROOT / "tests" / "integrations" / "fixtures" / "alertmanager" / "firing.json"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition (which must parse)."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= set(found))


def scrape(api: Api) -> Samples:
    answer = api.get("/metrics", Role.ADMIN)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == metrics.CONTENT_TYPE
    return parse(answer.text)


def routes_of(api: Api) -> set[str]:
    routes: list[BaseRoute] = api.client.app.routes  # type: ignore[attr-defined]
    return {str(r.path) for r in metrics.walk_routes(routes)}


# --- labels --------------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_label_values_come_from_closed_sets() -> None:
    assert [metrics.method_label(m) for m in ("GET", "POST", "BREW", "get")] == [
        "GET",
        "POST",
        "other",
        "other",
    ]
    allowed = ["local/qwen+openai/gpt-4o", "fake/analyst", "baseline"]
    models = ["local/qwen", "openai/gpt-4o", "fake/analyst", "openai/gpt-5", "x" * 300]
    assert [metrics.model_label(m, allowed) for m in models] == [
        "local/qwen",
        "openai/gpt-4o",
        "fake/analyst",
        "other",
        "other",
    ]
    cases = [
        ("opened", 202),
        ("made-up", 202),
        (None, 401),
        (None, 403),
        (None, 413),
        (None, 422),
        (None, 429),
        (None, 503),
        (None, 201),
        (None, 200),
        (None, 418),
    ]
    assert [metrics.intake_label(o, s) for o, s in cases] == [
        "opened",
        "other",
        "unauthorized",
        "unauthorized",
        "too_large",
        "invalid",
        "busy",
        "error",
        "appended",
        "unchanged",
        "other",
    ]


def test_requests_count_under_route_templates_never_paths(api: Api) -> None:
    before = scrape(api)
    for n in range(5):
        assert api.get(f"/v1/incidents/inc-missing-{n}").status_code == 404
    assert api.client.get("/v1/incidents/inc-no-key").status_code == 401  # refused first
    assert api.client.get("/no/such/path/at-all").status_code == 401
    assert api.client.request("BREW", "/healthz").status_code == 405
    api.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    after = scrape(api)

    def grew(**labels: str) -> float:
        name = "rca_http_requests_total"
        return value(after, name, **labels) - value(before, name, **labels)

    incident = "/v1/incidents/{incident_id}"
    assert grew(method="GET", route=incident, status="404") == 5
    assert grew(method="GET", route=incident, status="401") == 1
    assert grew(method="GET", route="unmatched", status="401") == 1
    assert grew(method="other", route="/healthz", status="405") == 1
    assert grew(method="POST", route="/mcp") == 1
    counted = "rca_http_request_seconds_count"
    grown = value(after, counted, method="GET", route=incident)
    assert grown - value(before, counted, method="GET", route=incident) == 6
    # The registry is the process's: other tests' apps (a `/boom` route, say) left samples in
    # it. The labels this test's requests made are those of the samples that grew.
    labels = {
        dict(found).get("route")
        for (name, found), count in after.items()
        if name.startswith("rca_http") and count > before.get((name, found), 0.0)
    }
    assert labels - {None} <= routes_of(api) | {"unmatched"}
    assert {incident, "unmatched", "/healthz", "/mcp"} <= labels


# --- what is counted, in one process -------------------------------------------------------


def test_a_draft_moves_the_job_duration_model_token_and_cost_counters(api: Api) -> None:
    before = scrape(api)
    incident = api.post("/v1/incidents", json=json.loads(INCIDENT_FILE.read_text())).json()
    job = api.post(f"/v1/incidents/{incident['id']}/drafts", json={}).json()
    assert DraftWorker(api.services, "test").run_once()
    usage = api.services.jobs.get(job["id"]).draft.usage  # type: ignore[union-attr]
    after = scrape(api)
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("rca_draft_job_seconds_count", outcome="succeeded") == 1
    assert grew("rca_draft_job_seconds_sum", outcome="succeeded") > 0
    model = "fake/analyst"
    assert grew("rca_model_tokens_total", model=model, kind="prompt") == usage.prompt_tokens
    assert grew("rca_model_tokens_total", model=model, kind="completion") == (
        usage.completion_tokens
    )
    assert grew("rca_model_calls_total", model=model, ok="true") == len(usage.calls)
    assert ("rca_model_cost_usd_total", (("model", model),)) in after  # 0: a fake has no price


def test_webhook_intake_is_counted_per_integration_and_outcome(api: Api) -> None:
    token = api.services.integrations.create(IntegrationKind.ALERTMANAGER, "am").credential
    hook = "/v1/hooks/alertmanager"
    body = json.loads(ALERT.read_text())
    before = scrape(api)
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.client.post(hook, json=body, headers=bearer).json()["outcome"] == "opened"
    assert api.client.post(hook, json=body, headers=bearer).json()["outcome"] == "unchanged"
    assert api.client.post(hook, json={"version": "4"}, headers=bearer).status_code == 422
    wrong = {"Authorization": "Bearer rcai_nope_nope"}
    assert api.client.post(hook, json=body, headers=wrong).status_code == 401  # before routing
    assert api.post("/v1/hooks/github", content=b"{}").status_code == 401  # not signed
    after = scrape(api)

    def grew(**labels: str) -> float:
        name = "rca_webhooks_received_total"
        return value(after, name, **labels) - value(before, name, **labels)

    for outcome in ("opened", "unchanged", "invalid", "unauthorized"):
        assert grew(integration="alertmanager", outcome=outcome) == 1, outcome
    assert grew(integration="github", outcome="unauthorized") == 1
    assert grew() == 5


def test_queue_depth_and_index_lag_are_read_from_the_database(api: Api) -> None:
    incident = api.post("/v1/incidents", json=json.loads(INCIDENT_FILE.read_text())).json()
    for _ in range(3):
        assert api.post(f"/v1/incidents/{incident['id']}/drafts", json={}).status_code == 202
    for n in range(2):
        made = Postmortem.model_validate(postmortem_data(id=f"pm-lag-{n}"))
        api.services.store.save_postmortem(made, "test")
    found = scrape(api)
    assert value(found, "rca_draft_queue_depth") == 3
    assert value(found, "rca_draft_jobs", status="queued") == 3
    pending = api.services.store.index_state.pending_count()
    assert pending >= 2 and value(found, "rca_index_outbox_pending") == pending
    api.services.retrieval.indexer.sync()
    assert value(scrape(api), "rca_index_outbox_pending") == 0


def test_outbound_deliveries_are_counted_by_outcome(tmp_path: Path) -> None:
    receiver = Receiver(free_port(), answers=[500]).start()
    try:
        with outbound_api(tmp_path, max_attempts=5) as api:
            subscribe(api, receiver, WebhookEvent.ACTION_ITEM_UPDATED)
            policy = RetryPolicy.of(api.services.settings.outbound)
            webhooks = Webhooks(api.services.store.engine, policy)
            sender = WebhookSender(webhooks, api.services.settings.outbound, "test")
            before = scrape(api)
            queue(api, 1)
            try:
                deadline = time.monotonic() + 10
                while not receiver.received or len(receiver.received) < 2:
                    assert time.monotonic() < deadline, "not delivered"
                    sender.run_once()
                    time.sleep(0.03)
            finally:
                sender.close()
            after = scrape(api)
    finally:
        receiver.stop()

    def grew(outcome: str) -> float:
        name = "rca_webhook_deliveries_total"
        return value(after, name, outcome=outcome) - value(before, name, outcome=outcome)

    assert (grew("failed"), grew("delivered"), grew("dead")) == (1, 1, 0)
