"""What every attack group of `bench/attack.py` shares: the loopback-only HTTP client that
counts requests, server errors and leaks, the canary secrets, and the world the groups attack.

A `Probe` is one group's view of the server: every request goes through it, is refused unless
it targets loopback, is counted against the group's budget (seconds and requests), and its
answer is checked for a 5xx, for the `nosniff` header every answer must carry, and for the
canary secrets (unless the answer is the incident as submitted, returned raw by design).
"""

from __future__ import annotations

import html
import ipaddress
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, urlsplit

import httpx

T = TypeVar("T")

CANARIES: dict[str, tuple[str, str]] = {
    "aws access key id": ("deploy used AKIAQ4ZK7TJ2MB5XW3PR for s3", "AKIAQ4ZK7TJ2MB5XW3PR"),
    "password pair": ("retry with db_password=Vx7qLm2Rt9Kp failed", "Vx7qLm2Rt9Kp"),
    "plain-language password": ("fyi the db password is hunter2xyz for now", "hunter2xyz"),
    "bearer token": (
        "curl -H 'Authorization: Bearer Kd93jf8sLQpz0vXa7mN2'",
        "Kd93jf8sLQpz0vXa7mN2",
    ),
    "github token": (
        "clone failed for ghp_Wq2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz0Xc2Vb4",
        "ghp_Wq2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz0Xc2Vb4",
    ),
    "url password": (
        "pool saw postgres://orders:Pl4inT3xtPw77@db-2.internal:5432/orders refuse",
        "Pl4inT3xtPw77",
    ),
}
"""Secrets of the kinds issue 16 names, planted by the redaction group: (line, secret)."""


def leaked(text: str) -> list[str]:
    """The canaries found in `text`: as written, HTML-escaped or URL-encoded."""
    plain = html.unescape(text)
    return [
        name
        for name, (_line, secret) in CANARIES.items()
        if secret in plain or quote(secret, safe="") in text or quote_plus(secret) in text
    ]


_AS_SUBMITTED = re.compile(r"^/v1/incidents(?:/[^/?]+)?(?:\?.*)?$")


def as_submitted(method: str, path: str) -> bool:
    """Whether the answer is the incident as submitted, which the API returns raw to its
    engineers by design: `POST /v1/incidents` (its echo), `GET /v1/incidents/{id}` and the
    list of incidents (their titles). Everything derived from an incident is redacted."""
    return method in ("GET", "POST") and bool(_AS_SUBMITTED.match(path))


def require_loopback(url: str) -> None:
    """Refuse any target that is not this machine's loopback interface."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"bench/attack.py: refusing to attack {host!r}: loopback only")


@dataclass
class World:
    """The running server and what set-up made: keys per principal, ids to aim at."""

    base: str
    port: int
    data_dir: Path
    log: Path
    keys: dict[str, str]
    """`admin`, `reviewer`, `engineer`, plus `revoked` (a revoked admin key)."""
    quick: bool
    header_timeout_s: float
    ids: dict[str, str] = field(default_factory=dict)
    """`incident`, `postmortem`, `draft`: things that exist, for paths to aim at."""

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


class OutOfBudget(Exception):
    """The group used its seconds or its requests."""


@dataclass
class Tally:
    """One group's counts and findings."""

    name: str
    requests: int = 0
    server_errors: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cut_short: bool = False


class Probe:
    """A group's client: counts, budgets and checks every request it sends."""

    def __init__(self, world: World, tally: Tally, seconds: float, max_requests: int) -> None:
        require_loopback(world.base)
        self.world = world
        self.tally = tally
        self.deadline = time.monotonic() + seconds
        self.max_requests = max_requests
        self._lock = threading.Lock()
        self.client = httpx.Client(
            base_url=world.base, timeout=60, limits=httpx.Limits(max_connections=64)
        )

    def close(self) -> None:
        self.client.close()

    # --- findings --------------------------------------------------------------------------

    def fail(self, what: str) -> None:
        with self._lock:
            self.tally.failures.append(what)

    def expect(self, ok: bool, what: str) -> bool:
        """Record a failure unless `ok`; return `ok`."""
        if not ok:
            self.fail(what)
        return ok

    def leak(self, what: str) -> None:
        with self._lock:
            self.tally.leaks.append(what)

    def scan(self, where: str, text: str) -> None:
        """Count each canary found in `text` as a leak."""
        found = leaked(text)
        if found:
            self.leak(f"{where}: {', '.join(found)}")

    # --- requests --------------------------------------------------------------------------

    def spend(self, count: int = 1) -> None:
        """Count `count` requests (or connections) against the budget."""
        with self._lock:
            if time.monotonic() > self.deadline or self.tally.requests >= self.max_requests:
                self.tally.cut_short = True
                raise OutOfBudget
            self.tally.requests += count

    def call(
        self,
        method: str,
        path: str,
        who: str | None = "engineer",
        *,
        raw: bool | None = None,
        client: httpx.Client | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request as `who` (a key of `World.keys`, or None for no key); its answer is
        checked: 5xx, nosniff, and canaries unless `raw` (default: the answer is the incident
        as submitted)."""
        client = client or self.client
        require_loopback(str(client.base_url.join(path)))
        self.spend()
        sent = {**(self.world.auth(who) if who else {}), **(headers or {})}
        response = client.request(method, path, headers=sent, **kwargs)
        label = f"{method} {path[:120]}"
        if response.status_code >= 500:
            with self._lock:
                self.tally.server_errors.append(
                    f"{label} -> {response.status_code} {response.text[:300]!r}"
                )
        if response.headers.get("x-content-type-options") != "nosniff":
            self.fail(f"{label} -> {response.status_code} without X-Content-Type-Options: nosniff")
        if not (as_submitted(method, path) if raw is None else raw):
            self.scan(label, response.text)
        return response

    def get(self, path: str, who: str | None = "engineer", **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, who, **kwargs)

    def post(self, path: str, who: str | None = "engineer", **kwargs: Any) -> httpx.Response:
        return self.call("POST", path, who, **kwargs)

    def together(self, tasks: Sequence[Callable[[], T]]) -> list[T]:
        """Run `tasks` at once (each in its own thread, released together); their results."""
        barrier = threading.Barrier(len(tasks))

        def run(task: Callable[[], T]) -> T:
            barrier.wait()
            return task()

        with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
            return list(pool.map(run, tasks))

    @contextmanager
    def browser(self, who: str) -> Iterator[httpx.Client]:
        """A client signed in to the web UI as `who` (a session cookie)."""
        client = httpx.Client(base_url=self.world.base, timeout=60)
        try:
            self.spend()
            signed = client.post(
                "/ui/sign-in", data={"api_key": self.world.keys[who]}, follow_redirects=False
            )
            if signed.status_code != 303 or "rca_session" not in client.cookies:
                self.fail(f"sign-in as {who} -> {signed.status_code}, no session cookie")
            yield client
        finally:
            client.close()

    def finished_draft(self, incident_id: str, who: str = "engineer") -> dict[str, Any] | None:
        """Request a draft of the incident and wait for it (within the budget); the job, if
        it succeeded."""
        job = self.post(f"/v1/incidents/{incident_id}/drafts", who, json={})
        if not self.expect(job.status_code == 202, f"draft of {incident_id} -> {job.status_code}"):
            return None
        found = self.wait_draft(job.json()["id"], who)
        ok = found["status"] == "succeeded"
        self.expect(ok, f"draft of {incident_id} failed: {str(found.get('error'))[:300]}")
        return found if ok else None

    def wait_draft(self, draft_id: str, who: str = "engineer") -> dict[str, Any]:
        """The draft job once it succeeded or failed (polled within the budget)."""
        while True:
            found: dict[str, Any] = self.get(f"/v1/drafts/{draft_id}", who).json()
            if found.get("status") in ("succeeded", "failed"):
                return found
            time.sleep(0.25)
