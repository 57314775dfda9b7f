"""`/metrics` with prometheus-client: what it counts, with bounded labels, in one process (the
app in the test) and summed over every process of a real `rca serve --workers 2`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import BaseRoute

from api import metrics
from api.webhook_sender import WebhookSender
from api.worker import DraftWorker
from rca.config import Settings
from rca.domain import Postmortem
from rca.store import Store
from rca.store.integrations import IntegrationKind, Integrations
from rca.store.keys import Role
from rca.store.webhooks import RetryPolicy, WebhookEvent, Webhooks
from tests.api.receiver import Receiver
from tests.api.support import INCIDENT_FILE, Api, free_port
from tests.api.test_webhooks import outbound_api, queue, subscribe
from tests.factories import postmortem_data
from tests.processes import descendants, rca_serve
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


# --- the multi-process directory -----------------------------------------------------------


@pytest.fixture
def no_multiprocess_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The variable unset, and unset again afterwards whatever the test set."""
    monkeypatch.setenv(metrics.MULTIPROC_ENV, "placeholder")
    monkeypatch.delenv(metrics.MULTIPROC_ENV)
    yield monkeypatch


def _ended_pid() -> int:
    """The pid of a process that has ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.sqlite_only
def test_start_clears_a_given_directory_or_makes_a_fresh_one(
    tmp_path: Path, no_multiprocess_env: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    gone = data_dir / "metrics" / str(_ended_pid())
    gone.mkdir(parents=True)
    (gone / "counter_1.db").write_bytes(b"left by a SIGKILLed supervisor")
    made, ours = metrics.start_multiprocess(data_dir)
    assert ours and made == data_dir / "metrics" / str(os.getpid())
    assert made.is_dir() and list(made.iterdir()) == []
    assert not gone.exists()
    assert os.environ[metrics.MULTIPROC_ENV] == str(made)
    metrics.end_multiprocess(made, ours)
    assert not made.exists()

    given = tmp_path / "prom"
    given.mkdir()
    (given / "counter_12345.db").write_bytes(b"stale")
    (given / "README").write_text("not ours to remove")
    no_multiprocess_env.setenv(metrics.MULTIPROC_ENV, str(given))
    assert metrics.start_multiprocess(tmp_path / "data") == (given, False)
    assert [p.name for p in given.iterdir()] == ["README"]
    metrics.end_multiprocess(given, False)
    assert given.is_dir()


# --- every process of a real `rca serve --workers 2` ---------------------------------------

FAKE_MODEL = """\
import sys

if sys.argv[:2] == ["-m", "worker"]:  # `rca worker`, which drafts
    from rca.llm import ScriptedModel, register_provider
    from rca.testing import fake_analyst

    register_provider("fake", ScriptedModel(reply=fake_analyst))
"""
"""A `sitecustomize` that gives the `rca worker` of the served app the scripted fake model."""


def _call(base: str, key: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.read()


def _until(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _healthz_of(files: list[Path], into: Path) -> float:
    """The /healthz requests counted in some processes' sample files (copied apart)."""
    into.mkdir(parents=True)
    for file in files:
        shutil.copy(file, into / file.name)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(into))  # type: ignore[no-untyped-call]
    return value(
        parse(generate_latest(registry).decode()), "rca_http_requests_total", route="/healthz"
    )


@pytest.mark.sqlite_only
def test_one_scrape_counts_every_process_of_rca_serve(tmp_path: Path) -> None:
    shared = tmp_path / "prom"
    shared.mkdir()
    earlier = (  # an earlier run's samples, left in the directory
        "from api import metrics; metrics.HTTP_REQUESTS.labels('GET', '/healthz', '200').inc(1000)"
    )
    env = {**os.environ, metrics.MULTIPROC_ENV: str(shared)}
    subprocess.run([sys.executable, "-c", earlier], env=env, check=True, timeout=120)
    stale = list(shared.glob("counter_*.db"))
    assert stale
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAKE_MODEL)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    with rca_serve(
        tmp_path / "data",
        free_port(),
        "--workers",
        "2",
        PROMETHEUS_MULTIPROC_DIR=str(shared),
        PYTHONPATH=path,
        RCA_LLM__MODEL="fake/analyst",
        RCA_LLM__MAX_RETRIES="0",
    ) as served:
        assert not any(file.exists() for file in stale)  # cleared at start
        base, key = served.base, served.key

        def scrape_all() -> Samples:
            return parse(_call(base, key, "/metrics").decode())

        def healthz() -> None:
            urllib.request.urlopen(base + "/healthz", timeout=30).close()

        servers = [
            p for p in descendants(served.process.pid) if "multiprocessing.spawn" in p.command
        ]
        assert len(servers) == 2
        first = value(scrape_all(), "rca_http_requests_total", route="/healthz")
        assert first < 1000
        sent = 0
        for attempt in range(30):  # until both processes have answered some
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda _n: healthz(), range(80)))
            sent += 80
            files = sorted(shared.glob("counter_*.db"))  # one per process that counted
            apart = tmp_path / "apart" / str(attempt)
            each = [_healthz_of([f], apart / f.stem) for f in files]
            if sum(count > 0 for count in each) >= 2:
                break
        # The kernel hands connections on the shared socket to whichever process accepts
        # first; on a busy machine one process can take every one of them. The sum over the
        # processes' files is what a scrape must show either way, and the draft below is
        # counted by the `rca worker` process and scraped from a server process. A request
        # is counted once its response has gone out, so the last few may land a moment
        # after their client has read them.
        checks = iter(range(1000))

        def all_counted() -> bool:
            into = tmp_path / "settled" / str(next(checks))
            files = sorted(shared.glob("counter_*.db"))
            each[:] = [_healthz_of([f], into / f.stem) for f in files]
            return sum(each) >= first + sent

        _until(all_counted, "every /healthz request to be counted", seconds=10)
        assert sum(each) == first + sent, each
        for _ in range(4):  # whichever process answers the scrape, it counts them all
            found = scrape_all()
            assert value(found, "rca_http_requests_total", route="/healthz") == first + sent

        # A draft, run by the `rca worker` process serve started, with the fake model.
        incident = json.loads(
            _call(base, key, "/v1/incidents", json.loads(INCIDENT_FILE.read_text()))
        )
        job = json.loads(
            _call(base, key, f"/v1/incidents/{incident['id']}/drafts", {"model": "fake/analyst"})
        )

        def drafted() -> bool:
            state = json.loads(_call(base, key, f"/v1/drafts/{job['id']}"))
            assert state["status"] in ("queued", "running", "succeeded"), state
            return bool(state["status"] == "succeeded")

        _until(drafted, "the draft")
        found = scrape_all()
        assert value(found, "rca_draft_job_seconds_count", outcome="succeeded") == 1
        tokens = value(found, "rca_model_tokens_total", model="fake/analyst", kind="prompt")
        assert tokens > 0
        assert value(found, "rca_draft_queue_depth") == 0

        # An Alertmanager delivery, and the gauges read from the database.
        store = Store.open(Settings(data_dir=tmp_path / "data", retrieval={"embedder": "fake"}))
        try:
            token = Integrations(store.engine).create(IntegrationKind.ALERTMANAGER, "am").credential
            hook = urllib.request.Request(
                base + "/v1/hooks/alertmanager",
                data=ALERT.read_bytes(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(hook, timeout=30) as answer:
                assert json.loads(answer.read())["outcome"] == "opened"
            found = scrape_all()
            opened = value(
                found, "rca_webhooks_received_total", integration="alertmanager", outcome="opened"
            )
            assert opened == 1
            assert value(found, "rca_index_outbox_pending") == store.index_state.pending_count()
        finally:
            store.close()
