"""Calls to the `rca serve` processes of the topology test, each one kept: which server, what
was asked, what came back (status 0: no answer at all) and how long it took; and a prober that
keeps asking both servers something that needs the database, to count their errors."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Answer:
    """One request to a server and its answer."""

    server: str
    method: str
    path: str
    status: int
    """The HTTP status; 0 when the connection failed or timed out."""
    content_type: str
    body: bytes
    at: float
    """`time.monotonic()` when the request was sent."""
    seconds: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)

    def shown(self) -> str:
        return f"{self.server} {self.method} {self.path} -> {self.status} {self.body[:300]!r}"


@dataclass
class Client:
    """One server, called with one API key; every answer is kept in `answers`."""

    name: str
    base: str
    key: str
    answers: list[Answer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Answer:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": f"Bearer {self.key}",
                "Content-Type": "application/json",
                **(headers or {}),
            },
            method=method,
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                status, kind, raw = (
                    answer.status,
                    answer.headers.get("Content-Type", ""),
                    answer.read(),
                )
        except urllib.error.HTTPError as err:
            status, kind, raw = err.code, err.headers.get("Content-Type", ""), err.read()
            err.close()
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            status, kind, raw = 0, "", repr(err).encode()
        found = Answer(
            self.name, method, path, status, kind, raw, started, time.monotonic() - started
        )
        with self._lock:
            self.answers.append(found)
        return found

    def get(self, path: str) -> Answer:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None, **headers: str) -> Answer:
        return self.call("POST", path, body if body is not None else {}, headers)


class Prober:
    """Asks each server, every `every_s`, for the newest incident (a database read) and for a
    similar search (the vector index, or lexical search when the index is down), on a thread,
    until stopped; the answers land in the clients' own lists, marked by path."""

    READ = "/v1/incidents?limit=1"
    SEARCH = "/v1/search/similar?q=checkout%20latency%20errors&k=3"

    def __init__(self, clients: list[Client], every_s: float = 0.2) -> None:
        self.clients = clients
        self.every_s = every_s
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(c,), name=f"probe-{c.name}", daemon=True)
            for c in clients
        ]

    def _run(self, client: Client) -> None:
        while not self._stop.is_set():
            client.call("GET", self.READ, timeout=20)
            client.call("GET", self.SEARCH, timeout=20)
            self._stop.wait(self.every_s)

    def __enter__(self) -> Prober:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def answers(self) -> list[Answer]:
        """Every probe answered so far, in order of sending."""
        probes = (self.READ, self.SEARCH)
        found = [a for c in self.clients for a in list(c.answers) if a.path in probes]
        return sorted(found, key=lambda a: a.at)
