"""The embedding service as a child of `rca serve --workers N`: started before the server
processes (which are pointed at it), restarted when it crashes, stopped with the server.

Each process that searches used to load the embedding model (torch and MiniLM, about 1 GB of
RSS each); with the service, the machine holds it once and the server processes import
neither torch nor sentence-transformers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import httpx

from api.serving import end_with_parent
from rca.config import Settings
from rca.errors import ConfigurationError
from retrieval.embedder import local_embedder

log = logging.getLogger(__name__)

START_S = 120.0
"""How long the service may take to answer its first health check (a busy 2-core machine)."""
MAX_RESTARTS = 5
RESTART_WINDOW_S = 300.0
"""A service that crashed `MAX_RESTARTS` times within this window is not started again."""
SOCKET_PATH_MAX = 100
"""Longer socket paths under the data directory give way to one in a private temporary
directory (Linux allows 107 bytes)."""


def socket_path(data_dir: Path) -> Path:
    """`<data dir>/embedder-<pid>.sock`, or a private temporary directory's socket when that
    path is too long for a Unix socket."""
    path = data_dir.resolve() / f"embedder-{os.getpid()}.sock"
    if len(os.fsencode(path)) <= SOCKET_PATH_MAX:
        return path
    return Path(tempfile.mkdtemp(prefix="rca-")) / "embedder.sock"


class EmbedderProcess:
    """One `rca embedder serve --socket PATH` child and the thread that restarts it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.socket = socket_path(settings.data_dir)
        private = self.socket.parent != settings.data_dir.resolve()
        self._private_dir = self.socket.parent if private else None
        self._lock = threading.Lock()  # spawning and stopping
        self.environment = dict(os.environ)  # as it was before the servers were pointed here
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._crashes: deque[float] = deque()
        self._watcher = threading.Thread(target=self._watch, name="rca-embedder", daemon=True)

    @property
    def pid(self) -> int | None:
        """The running service's process id."""
        return None if self._process is None else self._process.pid

    def start(self, wait: bool = False) -> None:
        """Start the service; with `wait`, until it answers (ConfigurationError if it ends
        first). Without, the server processes start beside it (they wait for its first answer,
        see `retrieval.remote_embedder.OPEN_WAIT_S`): the service imports far less than they do.
        A wrong model setting is refused here first either way."""
        embedder = local_embedder(self.settings)  # loads nothing; checks the model's directory
        log.info("embedding service: %s, %d dimensions", embedder.model_id, embedder.dimension)
        self._spawn()
        if wait:
            self._wait_ready()
        self._watcher.start()

    def _spawn(self) -> None:
        command = [sys.executable, "-m", "api.embedder_service", "--socket", str(self.socket)]
        self._process = subprocess.Popen(
            command,
            env=self.environment,
            preexec_fn=functools.partial(end_with_parent, os.getpid()),
        )

    def _wait_ready(self) -> None:
        transport = httpx.HTTPTransport(uds=str(self.socket))
        deadline = time.monotonic() + START_S
        with httpx.Client(transport=transport, timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                assert self._process is not None
                code = self._process.poll()
                if code is not None:
                    raise ConfigurationError(
                        f"the embedding service ended with exit code {code} before it answered "
                        "(its error is above)"
                    )
                try:  # (no socket yet: no attempt, see retrieval.remote_embedder)
                    ok = self.socket.exists() and client.get("http://embedder/healthz")
                    if ok and ok.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise ConfigurationError(
            f"the embedding service did not answer on {self.socket} within {START_S:g} s"
        )

    def _watch(self) -> None:
        """Restart the service when it ends unasked, unless it keeps crashing."""
        while not self._stopping.is_set():
            process = self._process
            assert process is not None
            code = process.wait()
            if self._stopping.is_set():
                return
            now = time.monotonic()
            self._crashes.append(now)
            while self._crashes and self._crashes[0] < now - RESTART_WINDOW_S:
                self._crashes.popleft()
            if len(self._crashes) >= MAX_RESTARTS:
                log.error(
                    "the embedding service ended %d times in %g s (last exit code %s); not "
                    "restarting it: similar search answers lexically until rca serve restarts",
                    len(self._crashes),
                    RESTART_WINDOW_S,
                    code,
                )
                return
            log.error("the embedding service ended (exit code %s); restarting it", code)
            time.sleep(min(2.0 ** len(self._crashes) / 4, 10.0))
            if self._stopping.is_set():
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                with contextlib.suppress(FileNotFoundError):
                    self.socket.unlink()  # a killed service leaves its socket behind
                self._spawn()

    def stop(self) -> None:
        """Stop the service (SIGTERM, then SIGKILL after 10 s) and remove its socket."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        if self._private_dir is not None:
            with contextlib.suppress(OSError):
                self._private_dir.rmdir()
