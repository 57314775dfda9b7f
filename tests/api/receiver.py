"""A webhook receiver for tests: a real HTTP server on loopback, in a thread, that checks every
delivery's Standard Webhooks signature and answers as the test scripts it (a status, or a hang
longer than the sender's timeout)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rca.integrations.signatures import verify_standard_webhook


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    id: str | None
    timestamp: str | None
    signature: str | None
    content_type: str | None
    body: bytes
    valid: bool
    """Whether the signature checked out with the receiver's key at its clock."""

    @property
    def event(self) -> dict[str, Any]:
        """The body, parsed."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Hang:
    """Answer after `seconds` (longer than the sender waits)."""

    seconds: float


@dataclass
class Receiver:
    """A receiver on `port` of 127.0.0.1 (started and stopped by the test)."""

    port: int
    keys: list[bytes] = field(default_factory=list)
    """The signing keys accepted."""
    answers: list[int | Hang] = field(default_factory=list)
    """What the next requests get, in order; then `default`."""
    default: int = 200
    clock: Callable[[], float] = time.time
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/rca"

    def ids(self) -> list[str]:
        """The `webhook-id` of every request so far, in order ("" when missing)."""
        with self._lock:
            return [r.id or "" for r in self.received]

    def _take(self, request: BaseHTTPRequestHandler, body: bytes) -> int | Hang:
        headers = request.headers
        seen = Received(
            path=request.path,
            id=headers.get("webhook-id"),
            timestamp=headers.get("webhook-timestamp"),
            signature=headers.get("webhook-signature"),
            content_type=headers.get("content-type"),
            body=body,
            valid=verify_standard_webhook(
                body,
                headers.get("webhook-id"),
                headers.get("webhook-timestamp"),
                headers.get("webhook-signature"),
                self.keys,
                now=self.clock(),
            ),
        )
        with self._lock:
            self.received.append(seen)
            return self.answers.pop(0) if self.answers else self.default

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                answer = receiver._take(self, body)
                if isinstance(answer, Hang):
                    time.sleep(answer.seconds)
                    answer = 200
                try:
                    self.send_response(answer)
                    if 300 <= answer < 400:
                        self.send_header("location", f"http://127.0.0.1:{receiver.port}/else")
                    self.send_header("content-type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok" if answer < 300 else b"receiver says no\x00\n")
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
