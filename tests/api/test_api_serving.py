"""Serving for real: `rca serve --workers 2` (several processes, one running the draft
workers), the election of that process, and SQLite writers queueing instead of starving."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import rca.llm
from api.serving import NoQueryString
from api.worker import InServerWorkers
from rca.config import Settings
from rca.domain import Incident
from rca.store import Store
from rca.store.engine import write_transaction
from tests.api.support import INCIDENT_FILE, Api, free_port
from tests.factories import incident_data
from tests.processes import descendants, is_running, kill, rca_serve, server_processes

ROOT = Path(__file__).parents[2]


def test_the_access_log_runs_only_rca_s_filter_once_litellm_is_loaded() -> None:
    """litellm hangs costly regex filters on uvicorn's access logger when imported; rca takes
    them off (its own filter keeps query strings, the data a request line holds, out)."""
    assert rca.llm.LlmClient is not None  # litellm is loaded
    access = logging.getLogger("uvicorn.access")
    assert not [f for f in access.filters if type(f).__module__.startswith("litellm")]
    line = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, "%s - %s %s", ("1.2.3.4", "GET", "/a?q=s3cr3t"), None
    )
    assert NoQueryString().filter(line) and line.getMessage() == "1.2.3.4 - GET /a"


def test_short_reads_take_at_most_read_threads_at_once(api: Api, backend: str) -> None:
    """PostgreSQL reads run in at most `api.read_threads` threads at once (SQLite's inline on
    the event loop, one at a time); each event loop gets its own limiter."""
    running, most, lock = [0], [0], threading.Lock()

    def read(n: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return n

    async def many() -> list[int]:
        return list(await asyncio.gather(*(api.services.quick(read, n) for n in range(8))))

    for _ in range(2):  # a second event loop
        assert asyncio.run(many()) == list(range(8))
    threads = api.services.settings.api.read_threads
    assert threads == 2 and most[0] == (1 if backend == "sqlite" else threads)


def test_only_one_process_per_data_directory_runs_the_in_server_workers(api: Api) -> None:
    first = InServerWorkers(api.services, 2, retry_s=0.05)
    second = InServerWorkers(api.services, 2, retry_s=0.05)
    first.start()
    second.start()
    try:
        assert len(first.running) == 2
        assert second.running == []
        first.stop()  # the process holding the lock exits: another one takes over
        deadline = time.monotonic() + 5
        while not second.running and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(second.running) == 2
    finally:
        first.stop()
        second.stop()


def test_none_asked_for_none_started(api: Api) -> None:
    workers = InServerWorkers(api.services, 0)
    workers.start()
    assert workers.running == []
    workers.stop()


def test_many_writer_threads_all_commit(tmp_path: Path, backend: str) -> None:
    store = Store.open(Settings(data_dir=tmp_path))
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for m in range(15):
                made = Incident.model_validate(incident_data(id=f"inc-w{n}-{m}"))
                store.save_incident(made, "test")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        assert len(store.incident_page(500)) == 8 * 15
        with write_transaction(store.engine) as conn:
            assert conn is not None
        # SQLite's writers queue on a lock file; PostgreSQL's need none.
        assert (tmp_path / "rca.db.writer-lock").exists() == (backend == "sqlite")
    finally:
        store.close()


def _call(url: str, key: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_rca_serve_with_two_processes_serves_and_drafts(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "RCA_DATA_DIR": str(tmp_path / "data"),
        "RCA_RETRIEVAL__EMBEDDER": "fake",
    }
    rca = Path(sys.executable).parent / "rca"
    server = subprocess.Popen(
        [str(rca), "serve", "--workers", "2", "--port", str(port), "--admin-key"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert server.stdout is not None
        key = ""
        for line in server.stdout:
            found = re.search(r"admin API key .*: (\S+)$", line)
            if found:
                key = found.group(1)
                break
        assert key
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        created = _call(base + "/v1/incidents", key, json.loads(INCIDENT_FILE.read_text()))
        job = _call(base + f"/v1/incidents/{created['id']}/drafts", key, {"model": "baseline"})
        while (state := _call(base + f"/v1/drafts/{job['id']}", key))["status"] != "succeeded":
            assert state["status"] in ("queued", "running"), state
            assert time.monotonic() < deadline, "the draft did not finish"
            time.sleep(0.2)
        assert state["draft"]["suggestions"]
        # Drafted by the `rca worker` child serve started, not inside a server process.
        assert not (tmp_path / "data" / "draft-workers.lock").exists()
        found = subprocess.run(
            ["pgrep", "-P", str(server.pid), "-f", "rca worker"], capture_output=True, text=True
        )
        children = [int(p) for p in found.stdout.split()]
        assert len(children) == 1
        server.kill()  # even killed outright, serve takes its worker with it
        server.wait(30)
        deadline = time.monotonic() + 45  # it finishes its loop first (slow on a busy machine)
        while Path(f"/proc/{children[0]}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{children[0]}").exists()
    finally:
        server.terminate()
        server.wait(30)
        if server.stdout is not None:
            server.stdout.close()


def test_a_killed_supervisor_takes_its_server_processes_with_it(tmp_path: Path) -> None:
    port = free_port()
    with rca_serve(tmp_path / "data", port, "--workers", "2") as served:
        below = descendants(served.process.pid)
        servers = server_processes(served.process.pid)
        assert len(servers) == 2, below
        served.process.kill()  # SIGKILL: no chance to stop its children itself
        served.process.wait(30)
        deadline = time.monotonic() + 10
        while any(is_running(p.pid) for p in below) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [p for p in below if is_running(p.pid)]
        kill(left)
        assert left == [], "left behind by a killed `rca serve`"
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))  # nobody listens on the port any more
