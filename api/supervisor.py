"""`rca serve --workers N`: N server processes, each listening on a socket of its own.

uvicorn's own supervisor binds one socket and hands it to every process. Keep-alive clients
then split unevenly: the process whose event loop wakes first accepts every connection
waiting, and a connection stays with the process that accepted it. Measured with wrk's 32
connections against two processes: 5/27, 8/24, 20/12 and 11/21, and the busier process's
requests waited about three times as long (similar search: p99 295 ms with 8/24, 193 ms with
15/17). Here each process binds the port with `SO_REUSEPORT` and the kernel spreads new
connections over the processes' sockets by a hash of the addresses.

- **The port is checked first.** The supervisor binds it once without `SO_REUSEPORT` before it
  starts anything, so a port another program (or another `rca serve`) holds is one error line
  and exit code 3, not a server sharing its traffic. Only processes of the same user can join a
  `SO_REUSEPORT` group at all.
- **A process that served and then died is replaced** (its socket, and connections waiting
  in it unaccepted, die with it; the others go on serving). One that never started (a broken
  setting, a database it cannot reach) stops everything with exit code 3: each replacement
  would fail the same way.
- **SIGINT or SIGTERM** stops the processes (SIGTERM: each finishes its requests within
  `api.serving.GRACEFUL_S`) and kills any left after that and a little more. Each process also
  ends with the supervisor if it is killed outright (`api.serving.end_with_parent`).

Not done, unlike uvicorn's supervisor: no health pings (a process that hangs is not replaced),
and no SIGHUP restart or SIGTTIN/SIGTTOU resizing.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE

from api.serving import GRACEFUL_S

log = logging.getLogger("uvicorn.error")
RESTART_PAUSE_S = 1.0
"""At least this long between two starts of one process slot (a process that keeps dying
after it started is not restarted in a tight loop)."""
POLL_S = 0.5
"""How often the supervisor looks at its processes."""


def listening_socket(host: str, port: int, *, shared: bool) -> socket.socket:
    """A TCP socket bound to `host:port` (not yet listening); `shared`: with `SO_REUSEPORT`,
    so each server process can bind one of its own."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def serve_one(config: Config) -> None:
    """One server process (the target of each spawned child): bind a socket of its own and
    serve on it; exit with STARTUP_FAILURE if it never started serving."""
    config.configure_logging()
    try:
        sock = listening_socket(config.host, config.port, shared=True)
    except OSError as err:
        log.error("server process cannot bind %s:%d: %s", config.host, config.port, err)
        sys.exit(STARTUP_FAILURE)
    server = Server(config)
    try:
        server.run(sockets=[sock])
    except Exception:
        if server.started:
            raise
        log.exception("server process failed to start")
        sys.exit(STARTUP_FAILURE)
    except KeyboardInterrupt:  # pragma: no cover - the supervisor stops us with SIGTERM
        pass
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class Supervisor:
    """Starts `processes` server processes for `config` and keeps them running until stopped."""

    def __init__(self, config: Config, processes: int) -> None:
        self.config = config
        self.count = processes
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[BaseProcess] = []
        self.started_at: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM (0), or until a process fails to start (3)."""
        if not self.port_free():
            return STARTUP_FAILURE
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for _ in range(self.count):
                self.processes.append(self._start())
                self.started_at.append(time.monotonic())
            log.info(
                "supervisor [%d]: %d server processes on %s:%d, each with its own socket",
                multiprocessing.current_process().pid,
                self.count,
                self.config.host,
                self.config.port,
            )
            code = 0
            while not self.stopping.wait(POLL_S):
                code = self._replace_ended()
                if code:
                    break
            return code
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def port_free(self) -> bool:
        """Whether the port can be bound (no other program, `rca serve` or not, holds it);
        if not, say so."""
        try:
            listening_socket(self.config.host, self.config.port, shared=False).close()
        except OSError as err:
            log.error(
                "cannot listen on %s:%d: %s (does another program hold the port? choose"
                " another with --port or RCA_API__PORT)",
                self.config.host,
                self.config.port,
                err,
            )
            return False
        return True

    def _start(self) -> BaseProcess:
        process = self.context.Process(target=serve_one, args=(self.config,), daemon=False)
        process.start()
        return process

    def _replace_ended(self) -> int:
        """Start a process for each that ended after it served; STARTUP_FAILURE if one never
        started."""
        for slot, process in enumerate(self.processes):
            if process.exitcode is None:
                continue
            if process.exitcode == STARTUP_FAILURE:
                log.error("server process [%s] failed to start (see above); stopping", process.pid)
                return STARTUP_FAILURE
            if time.monotonic() - self.started_at[slot] < RESTART_PAUSE_S:
                continue
            log.warning(
                "server process [%s] ended (exit code %s); starting another",
                process.pid,
                process.exitcode,
            )
            self.processes[slot] = self._start()
            self.started_at[slot] = time.monotonic()
        return 0

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()

    def _stop_all(self) -> None:
        """SIGTERM to every process; after GRACEFUL_S and a little more, SIGKILL."""
        for process in self.processes:
            if process.exitcode is None:
                process.terminate()
        deadline = time.monotonic() + GRACEFUL_S + 5
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                log.warning("server process [%s] did not stop; killing it", process.pid)
                process.kill()
                process.join()
