"""`rca serve --workers 2` runs one embedding service for its processes: the model is loaded
there only (the server processes and the draft worker never map torch), a crashed service is
restarted, and the service ends with the server, its socket removed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rca.config import Settings
from rca.domain import Postmortem
from rca.store import Store
from rca.testing import FakeEmbedder
from retrieval.service import open_retrieval
from tests.api.support import free_port
from tests.factories import postmortem_data
from tests.processes import Proc, Served, descendants, is_running, kill, rca_serve, stop


def _get(base: str, key: str, path: str) -> Any:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _search(base: str, key: str, text: str) -> Any:
    return _get(base, key, "/v1/search/similar?" + urllib.parse.urlencode({"q": text}))


def _roles(supervisor: int) -> dict[str, list[Proc]]:
    roles: dict[str, list[Proc]] = {"embedder": [], "worker": [], "server": []}
    for proc in descendants(supervisor):
        if "api.embedder_service" in proc.command:
            roles["embedder"].append(proc)
        elif "rca worker" in proc.command:
            roles["worker"].append(proc)
        elif "multiprocessing.spawn" in proc.command:  # not its resource tracker
            roles["server"].append(proc)
    return roles


def _torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


@contextmanager
def _serve_two(data: Path, port: int, start_s: float = 420) -> Iterator[Served]:
    """`rca serve --workers 2` with the real model, like `tests.processes.rca_serve` but allowed
    the start-up a loaded 2-core machine needs (three processes import the app and the torch)."""
    log = data.parent / f"serve-{port}.log"
    env = {**os.environ, "RCA_DATA_DIR": str(data), "RCA_API__WARM_UP": "false"}
    env.pop("RCA_RETRIEVAL__EMBEDDER", None)
    command = [str(Path(sys.executable).parent / "rca"), "serve", "--admin-key", "--workers", "2"]
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_s
        while True:
            assert server.poll() is None, f"rca serve ended:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"rca serve did not start:\n{log.read_text()}"
            found = re.search(r"admin API key .*: (\S+)$", log.read_text(), re.MULTILINE)
            try:
                if found:
                    urllib.request.urlopen(base + "/healthz", timeout=2).close()
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.3)
        yield Served(server, base, port, found.group(1), log)
    finally:
        below = descendants(server.pid)
        stop(server, 90)
        kill([p for p in below if is_running(p.pid)])


def _until(what: str, check: Any, seconds: float = 300) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.3)
    return found


def test_the_model_lives_in_one_embedding_service_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    store = Store.open(settings)
    store.save([Postmortem.model_validate(postmortem_data())], source="test")
    # Indexed here, into the real model's collection (documents by the bag-of-words fake at its
    # dimension, as bench/search.py does): the server processes open it as they start.
    documents = FakeEmbedder(dimension=384, model_id="all-MiniLM-L6-v2")
    retrieval = open_retrieval(settings, store, documents)
    retrieval.indexer.sync()
    retrieval.close()
    store.close()
    with _serve_two(data, free_port()) as served:
        roles = _roles(served.process.pid)
        assert len(roles["embedder"]) == 1 and len(roles["worker"]) == 1
        assert len(roles["server"]) == 2
        (embedder,) = roles["embedder"]
        sockets = list(data.glob("embedder-*.sock"))
        assert len(sockets) == 1

        # Searches embed their query in the service.
        last: list[Any] = []

        def indexed() -> Any:
            found = _search(served.base, served.key, "notifications consumer lag after a deploy")
            last[:] = [found]
            dense = found["hits"] and any("close in meaning" in w for w in found["hits"][0]["why"])
            return found if dense and not found["degraded"] else None

        try:
            found = _until("the postmortem was not indexed", indexed)
        except AssertionError as err:
            raise AssertionError(f"{err}; last: {last}\n{served.log_text()[-4000:]}") from None
        assert found["hits"][0]["postmortem_id"] == "pm-test-queue-2025"
        for n in range(4):  # each server process answers some (new texts: new embeddings)
            assert not _search(served.base, served.key, f"queue backlog number {n}")["degraded"]
        assert _torch(embedder.pid)
        for proc in roles["server"] + roles["worker"]:
            assert not _torch(proc.pid), f"{proc.command} loaded torch"

        # A crashed service is restarted; search goes on.
        os.kill(embedder.pid, signal.SIGKILL)
        restarted = _until(
            "the embedding service was not restarted",
            lambda: [p for p in _roles(served.process.pid)["embedder"] if p.pid != embedder.pid],
        )
        _until(
            "search did not recover",
            lambda: not _search(served.base, served.key, "after the restart")["degraded"],
        )
        assert "the embedding service ended (exit code -9); restarting it" in served.log_text()
    # Stopped with the server, its socket gone.
    assert not is_running(restarted[0].pid)
    assert not list(data.glob("embedder-*.sock"))


def test_one_server_process_keeps_the_model_in_process(tmp_path: Path) -> None:
    with rca_serve(tmp_path / "data", free_port()) as served:
        assert not _roles(served.process.pid)["embedder"]
        assert not list((tmp_path / "data").glob("embedder-*.sock"))
