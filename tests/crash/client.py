"""HTTP calls to the server under test, and the ledger of what it acknowledged and lost.

A request is *acknowledged* when a 2xx answer arrived whole; it is *lost* when the connection
failed before a whole answer came (refused, reset, timed out): it may or may not have been
applied, and must be sent again with the same Idempotency-Key (or the same If-Match).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TIMEOUT_S = 30.0


class Lost(Exception):
    """The connection failed before a whole answer arrived."""


@dataclass(frozen=True)
class Answer:
    """A whole HTTP answer."""

    status: int
    body: Any
    headers: dict[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Client:
    """Calls with a key: JSON in and out, one connection per call (a killed server's kept-alive
    connection would otherwise fail the next call)."""

    port: int
    key: str

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Answer:
        sent = {"Authorization": f"Bearer {self.key}", **headers}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
        try:
            conn.request(method, path, body=data, headers=sent)
            answer = conn.getresponse()
            raw = answer.read()
            found = {k.lower(): v for k, v in answer.getheaders()}
        except (OSError, http.client.HTTPException) as err:
            raise Lost(f"{method} {path}: {type(err).__name__}: {err}") from err
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Answer(answer.status, parsed, found)


@dataclass
class Ledger:
    """What the client threads sent and learned, and what the checks found (thread-safe)."""

    counts: Counter[str] = field(default_factory=Counter)
    """sent, acknowledged, lost, replays, refused (other non-2xx answers), per kind too."""
    findings: list[str] = field(default_factory=list)
    """Violations: a duplicate, a missing or changed acknowledged write, a stuck job..."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, *names: str, by: int = 1) -> None:
        with self.lock:
            for name in names:
                self.counts[name] += by

    def find(self, kind: str, text: str) -> None:
        """Record a violation of kind "duplicate", "missing", "integrity", "stuck" or "error"."""
        with self.lock:
            self.counts[f"finding.{kind}"] += 1
            self.findings.append(f"{kind}: {text}")
