"""`/metrics` across processes: the multi-process directory `rca serve` starts and clears,
and one scrape of a real `rca serve --workers 2` summing every process (its server processes
and its `rca worker`)."""

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

from api import metrics
from rca.config import Settings
from rca.store import Store
from rca.store.integrations import IntegrationKind, Integrations
from tests.api.support import INCIDENT_FILE, free_port
from tests.api.test_metrics import ALERT, Samples, parse, value
from tests.processes import rca_serve, server_processes

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

        servers = server_processes(served.process.pid)
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
