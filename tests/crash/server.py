"""`rca serve` for the crash rounds: started in a process group of its own (one server process,
or `--workers 2`: rca's supervisor, its two server processes and the `rca worker`), and
killed whole with SIGKILL.

Two ways to start it: `Forker.start` forks it from a process that imported rca once (fast);
`start_fresh` runs the `rca` console script (the full start-up; `--workers 2` always starts
this way, its server processes are spawned, not forked).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.processes import PROC

SITE = """\
from rca.llm import ScriptedModel, register_provider
from rca.testing import fake_analyst

register_provider("fake", ScriptedModel(reply=fake_analyst))
"""
"""A `sitecustomize` giving every process of a freshly started server the scripted model."""

START_S = 180.0
"""Longest wait for a (re)started server to answer /healthz: a fresh `--workers 2` imports the
app three times over on a busy 2-core machine."""


class NotRestarting(Exception):
    """The server ended, or did not answer, after a (re)start: a finding, with its log."""


def group_members(pgid: int) -> list[int]:
    """The live processes (no zombies) of process group `pgid`."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def _describe(pid: int) -> str:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        command = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"{pid} (gone)"
    return f"{pid} state {stat[stat.rindex(')') + 2]} ppid {stat.split()[3]}: {command[:120]}"


@dataclass
class Server:
    """A started `rca serve`: its process group (the id of its first process), port and log."""

    pgid: int
    port: int
    log: Path
    how: str
    """"forked" or "fresh"."""
    popen: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, seconds: float = START_S) -> float:
        """Wait for /healthz; the seconds it took. NotRestarting if it ends or never answers."""
        started = time.monotonic()
        while True:
            if not group_members(self.pgid):
                raise NotRestarting(f"rca serve ended at start:\n{self.log_tail()}")
            if time.monotonic() - started > seconds:
                raise NotRestarting(f"rca serve did not answer in {seconds:.0f} s")
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=2).close()
                return time.monotonic() - started
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)

    def kill(self) -> int:
        """SIGKILL every process of the group; how many there were. Waits until all ended."""
        members = group_members(self.pgid)
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 60
        while left := group_members(self.pgid):
            if time.monotonic() > deadline:
                shown = "; ".join(_describe(pid) for pid in left)
                raise NotRestarting(f"process group {self.pgid} survived SIGKILL: {shown}")
            time.sleep(0.02)
        if self.popen is not None:
            self.popen.wait(10)
        return len(members)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def serve_argv(port: int, workers: int) -> list[str]:
    return ["serve", "--port", str(port), "--workers", str(workers)]


def start_fresh(port: int, workers: int, env: dict[str, str], log: Path) -> Server:
    """Run the `rca` console script (new session, output appended to `log`)."""
    rca = Path(sys.executable).parent / "rca"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [str(rca), *serve_argv(port, workers)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Server(popen.pid, port, log, "fresh", popen)


class Forker:
    """The helper process of `tests.crash.forker`, ready to fork servers."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.crash.forker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        if json.loads(self._line()) != {"ready": True}:
            raise RuntimeError("the forker did not start")

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the forker ended (exit {self.process.wait()})")
        return line

    def start(self, port: int, env: dict[str, str], log: Path) -> Server:
        """Fork a one-process `rca serve`."""
        assert self.process.stdin is not None
        request = {"argv": serve_argv(port, 1), "env": env, "log": str(log)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        pid = int(json.loads(self._line())["pid"])
        return Server(pid, port, log, "forked")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Forker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
