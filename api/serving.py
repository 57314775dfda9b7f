"""How `rca serve` runs uvicorn: connections that cannot be held open, an access log without
query strings, and server processes that end with the process that started them.

- **Headers on time and bounded.** uvicorn (0.55, httptools) times out only idle keep-alive
  connections: a client that connects and sends nothing, or sends its headers a byte at a
  time, or sends endless headers, holds its connection (and memory) for as long as it likes.
  `GuardedHttp` is uvicorn's httptools protocol with a deadline for a request's headers
  (`RCA_API__HEADER_TIMEOUT_S`, counted from the connection or from the first byte after the
  previous response, however the bytes trickle in) and a cap on their size (431 beyond
  `MAX_HEADER_BYTES`). The time to receive a body is bounded by `api.limits.BodyLimit`.
- **No query strings in the access log.** Search text and cursors travel in query strings and
  people paste tokens into search boxes: `NoQueryString` logs the path only.
- **Server processes end with their supervisor.** `rca serve --workers N` is a supervisor
  (`api.supervisor`) with N spawned children, each on a socket of its own; killed outright, it used
  to leave them serving with no parent. Each child asks the kernel for SIGTERM when its parent
  dies (`end_with_parent`), and stops within `GRACEFUL_S`. SIGTERM cannot stop a start-up that
  is waiting (for the embedding service, which ended with the supervisor too), so a thread
  ends a child orphaned before it served at once, and one that served after `GRACEFUL_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ctypes
import functools
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, cast

from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG, Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.app import app_from_environment
from rca.config import Settings

MAX_HEADER_BYTES = 64 * 1024
"""Largest request line and headers accepted (431 beyond); browsers send a few KiB."""
GRACEFUL_S = 10
"""How long a stopping server process lets requests in flight finish."""
PR_SET_PDEATHSIG = 1


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline and a size cap for each request's headers.

    The size of a request's header block is measured two ways, so it is bounded however its
    bytes arrive: reads that fall wholly inside an unfinished block count in full (endless
    headers, however slow), and the parser's request line and headers count as parsed (a
    block that starts, or ends, in the middle of a read -- one read can hold it all)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout_s: float,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout_s = header_timeout_s
        self.max_header_bytes = max_header_bytes
        self._deadline: asyncio.TimerHandle | None = None
        self._before: object = None  # the request before the one whose headers are awaited
        self._heard = False  # a byte arrived since the deadline was set
        self._in_headers = False  # a request's header block is being parsed
        self._in_message = False  # a request is being parsed (its headers or its body)
        self._begun = 0  # requests begun during the read being parsed
        self._read_bytes = 0  # bytes of the reads wholly inside the current header block
        self._parsed_bytes = 0  # its request target and headers parsed so far
        self._refused = False  # answered (or to be answered) with an error: nothing more is read
        self._last_word: tuple[int, str] | None = None  # that answer, after those in flight

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # what follows a refused request is never parsed, nor kept
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._await_headers()  # the first byte of the next request on this connection
        if self._deadline is not None:
            self._heard = True
        inside, between, self._begun = self._in_headers, not self._in_message, 0
        super().data_received(data)
        if self._refused or self.transport.is_closing():
            return
        if self._in_headers and ((inside and not self._begun) or (between and self._begun == 1)):
            self._read_bytes += len(data)  # all of it is this header block
        if self._in_headers and self._header_size() > self.max_header_bytes:
            self._refuse_too_large()
        elif self._deadline is not None and self.cycle is not self._before:
            self._stop_waiting()  # its headers are complete

    # Parser callbacks: the size of each request's header block, and nothing of a refused
    # request (or of any after it) reaches the app.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_message = self._in_headers = True
        self._begun += 1
        self._read_bytes = self._parsed_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._parsed_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed_bytes += len(name) + len(value) + 4  # ": " and the line break
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        if not self._refused and self._header_size() > self.max_header_bytes:
            self._refuse_too_large()
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        if not self._refused:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._last_word is not None and self._answered():
            status, detail = self._last_word
            self._last_word = None
            self._refuse(status, detail)

    def _header_size(self) -> int:
        return max(self._read_bytes, self._parsed_bytes)

    def _answered(self) -> bool:
        """Whether every request before the one being read has had its response."""
        return self.cycle is None or self.cycle.response_complete

    def _refuse_too_large(self) -> None:
        self._refuse(431, f"request headers are limited to {self.max_header_bytes} bytes")

    def _await_headers(self) -> None:
        self._before = self.cycle
        self._heard = False
        self._deadline = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _stop_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.cycle is not self._before:
            return
        if self._heard:
            detail = f"the request headers did not arrive within {self.header_timeout_s:g} s"
            self._refuse(408, detail)
        else:
            self.transport.close()  # nothing asked: nothing to answer

    def send_400_response(self, msg: str) -> None:
        """A request httptools cannot parse: a problem too, like every other error."""
        self._refuse(400, msg)

    def _refuse(self, status: int, detail: str) -> None:
        """Answer a request that never reached the app with a problem, and close; once the
        requests before it on the connection (pipelined) have had their responses."""
        self._refused = True
        self._stop_waiting()
        if self.transport.is_closing():
            return
        if not self._answered():
            self._last_word = (status, detail)
            self.flow.pause_reading()
            return
        title = {
            400: "Bad request",
            408: "Request timeout",
            431: "Request header fields too large",
        }[status]
        problem = {"type": f"https://rca.dev/problems/{status}", "title": title}
        body = json.dumps({**problem, "status": status, "detail": detail}).encode()
        head = (
            f"HTTP/1.1 {status} {title}\r\ncontent-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\nx-content-type-options: nosniff\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


class NoQueryString(logging.Filter):
    """Drops the query string from uvicorn's access log lines (their third argument is the
    path with the query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run` for `settings` (host, port and the app apart)."""
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config.setdefault("filters", {})["no_query"] = {"()": f"{__name__}.NoQueryString"}
    log_config["loggers"]["uvicorn.access"]["filters"] = ["no_query"]
    http = functools.partial(GuardedHttp, header_timeout_s=settings.api.header_timeout_s)
    return {
        "http": cast("type[asyncio.Protocol]", http),  # uvicorn calls it like the class
        "ws": "none",  # no websocket routes: no upgrades
        "log_config": log_config,
        "log_level": "info",
        "timeout_graceful_shutdown": GRACEFUL_S,
    }


def end_with_parent(parent: int) -> None:
    """Get SIGTERM when the process `parent` (this one's parent) dies, even by SIGKILL; if it
    already has, stop now. Linux asks the kernel (prctl); elsewhere a thread watches."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    else:  # pragma: no cover - Linux only in CI
        watched = multiprocessing.parent_process()
        if watched is not None:
            threading.Thread(target=_stop_when_ended, args=(watched,), daemon=True).start()
    if os.getppid() != parent:  # died before the request above took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _stop_when_ended(parent: multiprocessing.process.BaseProcess) -> None:  # pragma: no cover
    parent.join()
    os.kill(os.getpid(), signal.SIGTERM)


def server_process_app() -> FastAPI:
    """The app of one server process of `rca serve --workers N` (uvicorn calls this factory in
    each process `api.supervisor` spawns): the process first ties its life to the supervisor's."""
    supervisor = multiprocessing.parent_process()
    started = threading.Event()
    if supervisor is not None and supervisor.pid is not None:
        end_with_parent(supervisor.pid)
        threading.Thread(
            target=_end_if_orphaned,
            args=(supervisor.pid, started),
            daemon=True,
            name="rca-orphan-watch",
        ).start()
    app = app_from_environment()
    lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def marking_started(running: Any) -> AsyncIterator[Any]:
        async with lifespan(running) as state:
            started.set()
            yield state

    app.router.lifespan_context = marking_started
    return app


def _end_if_orphaned(parent: int, started: threading.Event, poll_s: float = 0.2) -> None:
    """Once `parent` is gone: exit now if the app never started (nothing to finish: its
    start-up may be waiting for a service that ended too), else after SIGTERM's graceful stop
    had `GRACEFUL_S` and a little more."""
    while os.getppid() == parent:
        time.sleep(poll_s)
    if started.is_set():
        time.sleep(GRACEFUL_S + 5)
    os._exit(1)
