"""Processes the tests start: find them (below a pid, or anywhere by the session's mark in their
environment), tell whether they still run, and run a real `rca serve` on loopback.

Linux only (they read /proc); elsewhere `running` finds nothing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
MARK = "RCA_TEST_SESSION"
"""Set in the environment of the test run: every process it starts inherits it, so one left
behind is found even after its parent died and it was handed to init."""


@dataclass(frozen=True)
class Proc:
    """A process as /proc shows it."""

    pid: int
    ppid: int
    state: str
    command: str


def _read(pid: int) -> Proc | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        command = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after its end.
    state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
    shown = command.replace(b"\0", b" ").decode(errors="replace").strip()
    return Proc(pid, int(ppid), state, shown)


def running() -> list[Proc]:
    """Every process but zombies (which have ended and wait only to be reaped)."""
    if not PROC.is_dir():
        return []
    found = (_read(int(p.name)) for p in PROC.iterdir() if p.name.isdigit())
    return [p for p in found if p is not None and p.state != "Z"]


def is_running(pid: int) -> bool:
    found = _read(pid)
    return found is not None and found.state != "Z"


def descendants(pid: int) -> list[Proc]:
    """The running processes below `pid`: its children, theirs, and so on."""
    procs = running()
    below: list[Proc] = []
    parents = {pid}
    while True:
        found = [p for p in procs if p.ppid in parents and p not in below]
        if not found:
            return below
        below += found
        parents = {p.pid for p in found}


def server_processes(supervisor: int) -> list[Proc]:
    """The server processes `rca serve --workers N` (process `supervisor`) spawned (not its
    embedding service, draft worker or resource tracker)."""
    return [p for p in descendants(supervisor) if "multiprocessing.spawn" in p.command]


def marked(value: str) -> list[Proc]:
    """The running processes (but this one) whose environment carries `MARK=value`."""
    entry = f"{MARK}={value}".encode()
    found = []
    for proc in running():
        if proc.pid == os.getpid():
            continue
        try:
            environ = (PROC / str(proc.pid) / "environ").read_bytes()
        except OSError:  # ended meanwhile, or another user's
            continue
        if entry in environ.split(b"\0"):
            found.append(proc)
    return found


def kill(procs: list[Proc]) -> None:
    for proc in procs:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except OSError:
            pass


def stop(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM, then SIGKILL when it has not ended after `grace_s` seconds; waits for the end."""
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@dataclass(frozen=True)
class Served:
    """A running `rca serve`."""

    process: subprocess.Popen[bytes]
    base: str
    port: int
    key: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def rca_serve(data_dir: Path, port: int, *args: str, **env: str) -> Iterator[Served]:
    """`rca serve --admin-key --port PORT ARGS` with the fake embedder (and `env` added to the
    environment), its output in a file; yields once /healthz answers. Stops it and everything
    below it afterwards."""
    log = data_dir.parent / f"serve-{port}.log"
    rca = Path(sys.executable).parent / "rca"
    environment = {
        **os.environ,
        "RCA_DATA_DIR": str(data_dir),
        "RCA_RETRIEVAL__EMBEDDER": "fake",
        "RCA_API__WARM_UP": "false",
        **env,
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(rca), "serve", "--admin-key", "--port", str(port), *args],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # four processes starting at once on 2 busy cores
        key = ""
        while True:
            assert server.poll() is None, f"rca serve ended:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"rca serve did not start:\n{log.read_text()}"
            found = re.search(r"admin API key .*: (\S+)$", log.read_text(), re.MULTILINE)
            key = found.group(1) if found else ""
            try:
                if key:
                    urllib.request.urlopen(base + "/healthz", timeout=2).close()
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        yield Served(server, base, port, key, log)
    finally:
        below = descendants(server.pid)
        stop(server, 30)
        kill([p for p in below if is_running(p.pid)])
