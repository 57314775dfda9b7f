"""A scripted OpenAI-compatible chat-completions server on loopback, for provider-fault tests.

`FaultServer` answers `POST /v1/chat/completions` (non-streaming: rca never streams) in a
thread. Each model named in a request has a script, a list of `Fault`s taken one per request;
the last one repeats once the list is used up (so `[status(500)]` fails forever and
`[rate_limited(1), ok("...")]` recovers). Every request is recorded with its arrival time and
the model asked for.

    with FaultServer({"primary": [status(503)], "backup": [ok("fine")]}) as server:
        ... RCA_LLM__API_BASE=server.url ...
        server.arrivals("primary")  # [0.0, 1.01]: seconds since the first request
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any, Literal

Kind = Literal["ok", "status", "hang", "malformed", "truncated", "no_choices"]


@dataclass(frozen=True)
class Fault:
    """One scripted answer. Build it with `ok`, `status`, `rate_limited`, `hang`,
    `malformed`, `truncated` or `no_choices`."""

    kind: Kind
    text: str | Callable[[list[dict[str, Any]]], str] = ""
    """For `ok`: the reply, or a function of the request's messages."""
    code: int = 200
    """For `status`: the HTTP status."""
    retry_after: str | None = None
    """For `status`: the Retry-After header, if any."""
    seconds: float = 0.0
    """For `hang`: how long to wait before answering (a valid completion) at all."""


def ok(text: str | Callable[[list[dict[str, Any]]], str] = "{}") -> Fault:
    """200 with a valid chat completion whose content is `text`."""
    return Fault("ok", text=text)


def status(code: int, retry_after: str | None = None) -> Fault:
    """An OpenAI-style error body with status `code` (and Retry-After, if given)."""
    return Fault("status", code=code, retry_after=retry_after)


def rate_limited(retry_after: float | str) -> Fault:
    """429 with `Retry-After: <retry_after>`."""
    value = str(retry_after) if isinstance(retry_after, str) else f"{retry_after:g}"
    return status(429, value)


def hang(seconds: float) -> Fault:
    """Say nothing for `seconds` (past the client's timeout), then answer validly."""
    return Fault("hang", seconds=seconds)


def malformed() -> Fault:
    """200, `application/json`, a body that is not JSON."""
    return Fault("malformed")


def truncated() -> Fault:
    """200 whose Content-Length promises more than is sent before the connection closes."""
    return Fault("truncated")


def no_choices() -> Fault:
    """200 with a well-formed completion whose `choices` list is empty."""
    return Fault("no_choices")


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    at: float
    """`time.monotonic()` when its body had been read."""
    model: str
    path: str
    body: dict[str, Any]


@dataclass
class FaultServer:
    """The server; use it as a context manager (it listens on an ephemeral loopback port)."""

    script: dict[str, Sequence[Fault]]
    otherwise: Fault = field(default_factory=lambda: status(404))
    """The answer for a model without a script."""
    seen: list[Seen] = field(default_factory=list)
    _served: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The API base, as `RCA_LLM__API_BASE` takes it (`http://127.0.0.1:<port>/v1`)."""
        assert self._httpd is not None, "the server is not running"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def requests(self, model: str | None = None) -> list[Seen]:
        """The requests received (for `model` only, if given), in order of arrival."""
        with self._lock:
            return [s for s in self.seen if model is None or s.model == model]

    def arrivals(self, model: str | None = None) -> list[float]:
        """Seconds from the first request received (of any model) to each one for `model`."""
        with self._lock:
            if not self.seen:
                return []
            first = self.seen[0].at
        return [round(s.at - first, 3) for s in self.requests(model)]

    def gaps(self, model: str | None = None) -> list[float]:
        """Seconds between consecutive requests for `model`."""
        at = [s.at for s in self.requests(model)]
        return [round(b - a, 3) for a, b in pairwise(at)]

    def next_fault(self, model: str) -> Fault:
        with self._lock:
            faults = self.script.get(model)
            if not faults:
                return self.otherwise
            index = self._served.get(model, 0)
            self._served[model] = index + 1
        return faults[min(index, len(faults) - 1)]

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def __enter__(self) -> FaultServer:
        server = self

        class Handler(_Handler):
            faults = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="fault-server", daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()  # hanging handlers give up at once
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    """Answers each request by its model's script, then closes the connection: litellm may
    build several SDK clients for one server when questions are asked at once (it fills its
    client cache without a lock) and keeps one, leaving the others' pooled connections to the
    garbage collector -- harmless, but a ResourceWarning, which fails a test."""

    protocol_version = "HTTP/1.1"
    faults: FaultServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet in tests

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        model = str(body.get("model", ""))
        self.faults.record(Seen(time.monotonic(), model, self.path, body))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, _error("no such route", "not_found_error"))
            return
        if body.get("stream"):
            self._send(400, _error("this server does not stream", "invalid_request_error"))
            return
        fault = self.faults.next_fault(model)
        if fault.kind == "hang":
            if self.faults.stopping.wait(fault.seconds):
                self.close_connection = True
                return
            fault = ok()
        if fault.kind == "ok":
            text = fault.text(body.get("messages", [])) if callable(fault.text) else fault.text
            self._send(200, json.dumps(_completion(model, text)).encode())
        elif fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(fault.code, _error(f"scripted {fault.code}", "server_error"), headers)
        elif fault.kind == "malformed":
            self._send(200, b'{"id": "chatcmpl-1", "choices": [{"message": <html>oops</html>')
        elif fault.kind == "truncated":
            whole = json.dumps(_completion(model, "this answer is cut off")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(whole)))
            self.end_headers()
            self.wfile.write(whole[: len(whole) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:  # no_choices
            self._send(200, json.dumps({**_completion(model, ""), "choices": []}).encode())

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault-server",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _error(message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": None}}).encode()
