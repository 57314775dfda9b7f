"""Attack groups on the service's limits: hostile 100k-character text and huge causal chains
(issue 16, findings 1 and 8), bad timestamps everywhere a time comes in (finding 5), and
bursts against idempotency keys and the draft queue's caps (findings 6 and 7)."""

from __future__ import annotations

import base64
import copy
import functools
import re
import sys
import threading
import time
from collections import Counter
from typing import Any

import httpx

from bench._attacks_data import AT, example
from bench._probe import Probe

# --- quadratic inputs (findings 1 and 8) -----------------------------------------------------

HOSTILE = ["a.", "k1=v1 ", "a=", "password=", "password is ", "a:", "pw a1b2 "]
"""Units repeated to 100,000 characters: runs that once made the redactor backtrack."""
PAGE_BOUND_S = 5.0
"""Longest a page view (or search) of the hostile incident may take."""
HEALTHZ_BOUND_S = 2.0
"""Longest /healthz may wait meanwhile (the redactor once held the interpreter lock)."""


def _timed_beside_healthz(probe: Probe, path: str) -> tuple[httpx.Response, float, float]:
    """GET `path` while another thread polls /healthz: the answer, its seconds, and the
    longest /healthz wait meanwhile."""
    done = threading.Event()
    waits: list[float] = []

    def poll() -> None:
        with httpx.Client(base_url=probe.world.base, timeout=60) as client:
            while not done.is_set():
                started = time.monotonic()
                probe.get("/healthz", None, client=client)
                waits.append(time.monotonic() - started)
                time.sleep(0.1)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        started = time.monotonic()
        answer = probe.get(path, "engineer")
        took = time.monotonic() - started
    finally:
        done.set()
        poller.join()
    return answer, took, max(waits, default=0.0)


def quadratic(probe: Probe) -> None:
    units = [HOSTILE[0], HOSTILE[-1]] if probe.world.quick else HOSTILE
    body = example(probe)
    body |= {"id": "inc-attack-hostile", "title": ("a." * 2_000)[:3_990]}
    body["summary"] = ("k=v;" * 25_000)[:100_000]
    for n, unit in enumerate(units):
        text = (unit * (100_000 // len(unit) + 1))[:100_000]
        body["logs"].append({"id": f"h{n}", "at": AT, "source": "checkout-api", "text": text})
    created = probe.post("/v1/incidents", json=body)
    if not probe.expect(created.status_code == 201, f"hostile incident -> {created.text[:200]}"):
        return
    with probe.browser("engineer") as browser:
        started = time.monotonic()
        page = probe.get("/ui/incidents/inc-attack-hostile", None, client=browser)
        took = time.monotonic() - started
        probe.expect(
            page.status_code == 200 and took < PAGE_BOUND_S,
            f"hostile incident page -> {page.status_code} in {took:.1f} s",
        )
    for path in (
        "/v1/incidents/inc-attack-hostile/similar?k=5",
        "/v1/incidents/inc-attack-hostile",
    ):
        answer, took, healthz = _timed_beside_healthz(probe, path)
        probe.expect(
            answer.status_code == 200 and took < PAGE_BOUND_S and healthz < HEALTHZ_BOUND_S,
            f"GET {path} -> {answer.status_code} in {took:.1f} s, /healthz waited {healthz:.1f} s",
        )
    for search in ("a." * 1_999, "k1=v1 " * 666, "password is " * 333):
        started = time.monotonic()
        found = probe.get("/v1/search/similar", params={"q": search, "k": 3})
        took = time.monotonic() - started
        probe.expect(
            found.status_code < 500 and took < PAGE_BOUND_S,
            f"search for {search[:12]!r}... -> {found.status_code} in {took:.1f} s",
        )
    _long_chains(probe)
    if not probe.world.quick:
        started = time.monotonic()
        probe.finished_draft("inc-attack-hostile")
        took = time.monotonic() - started
        print(f"  the hostile incident's draft took {took:.1f} s", file=sys.stderr)


def _chain(nodes: int) -> list[dict[str, Any]]:
    return [
        {"id": f"n{i}", "kind": "cause", "text": f"step {i}", "leads_to": [f"n{i + 1}"]}
        if i + 1 < nodes
        else {"id": f"n{i}", "kind": "impact", "text": f"step {i}", "leads_to": []}
        for i in range(nodes)
    ]


def _long_chains(probe: Probe) -> None:
    """Causal chains over the cap (300 nodes) are a quick 422 and store nothing."""
    export = probe.get(f"/v1/postmortems/{probe.world.ids['postmortem']}/export?format=json")
    base = export.json() | {"id": "pm-attack-chain"}
    for nodes in (301,) if probe.world.quick else (301, 20_000):
        started = time.monotonic()
        refused = probe.post(
            "/v1/postmortems", "reviewer", json=base | {"causal_chain": _chain(nodes)}
        )
        took = time.monotonic() - started
        probe.expect(
            refused.status_code == 422 and "300" in refused.text and took < PAGE_BOUND_S,
            f"a {nodes}-node chain -> {refused.status_code} in {took:.1f} s",
        )
    missing = probe.get("/v1/postmortems/pm-attack-chain")
    probe.expect(missing.status_code == 404, f"a refused chain was stored: {missing.status_code}")


# --- bad timestamps (finding 5) ----------------------------------------------------------

OVERFLOW = "9999-12-31T23:59:59-23:59"
BAD_TIMES = [
    OVERFLOW,
    "2026-01-20T14:05:00",  # naive
    "2026-01-20",  # a date, no time
    "0001-01-01T00:00:00+23:59",
    "1969-12-31T23:59:59Z",
    "2201-01-01T00:00:00Z",
]
FIELDS = ["started_at", "detected_at", "mitigated_at", "resolved_at"]
EVIDENCE = ["alerts", "timeline", "logs", "chat"]


def cursor(*parts: str) -> str:
    """A cursor in the API's format (URL-safe base64 of the parts joined by US)."""
    return base64.urlsafe_b64encode("\x1f".join(parts).encode()).decode().rstrip("=")


def times(probe: Probe) -> None:
    values = BAD_TIMES[:3] if probe.world.quick else BAD_TIMES
    base = example(probe)
    base["id"] = "inc-attack-bad-time"
    for value in values:
        for field in FIELDS + EVIDENCE:
            body = copy.deepcopy(base)
            if field in FIELDS:
                body[field] = value
            else:
                body[field][0]["at"] = value
            answer = probe.post("/v1/incidents", json=body)
            probe.expect(answer.status_code == 422, f"{field}={value} -> {answer.status_code}")
        for name in ("since", "until"):
            answer = probe.get("/v1/incidents", params={name: value})
            probe.expect(answer.status_code == 422, f"incidents {name}={value} -> {answer}")
        pm = probe.get(f"/v1/postmortems/{probe.world.ids['postmortem']}/export?format=json")
        document = pm.json() | {"id": "pm-attack-bad-time"}
        if document.get("timeline"):
            document["timeline"][0]["at"] = value
            answer = probe.post("/v1/postmortems", "reviewer", json=document)
            probe.expect(answer.status_code == 422, f"postmortem timeline {value} -> {answer}")
    probe.expect(probe.get("/v1/incidents/inc-attack-bad-time").status_code == 404, "stored")
    for value in (OVERFLOW, "9999-99-99", "2026-02-30", "0000-01-01"):
        for path in ("/v1/postmortems", "/v1/search/similar"):
            for name in ("since", "until"):
                answer = probe.get(path, params={name: value, "q": "checkout"})
                probe.expect(answer.status_code == 422, f"{path} {name}={value} -> {answer}")
    stale = [OVERFLOW, "2026-01-20T14:05:00", "2026-01-20", "yesterday", ""]
    with probe.browser("engineer") as browser:
        for at in stale:
            for path in ("/v1/incidents", "/ui/incidents"):
                client = browser if path.startswith("/ui") else None
                who = None if client else "engineer"
                params = {"cursor": cursor(at, "inc-a")}
                answer = probe.get(path, who, client=client, params=params)
                probe.expect(answer.status_code == 400, f"{path} cursor at {at!r} -> {answer}")
        for path, parts in (
            ("/v1/postmortems", ("9999-12-31T23:59:59-23:59", "pm-a")),
            ("/v1/postmortems", ("2026-13-01", "pm-a")),
            ("/v1/action-items", ("pm-a", "99999999999")),
            ("/v1/action-items", ("pm-a", "-1")),
        ):
            answer = probe.get(path, params={"cursor": cursor(*parts)})
            probe.expect(answer.status_code == 400, f"{path} cursor {parts} -> {answer}")
        for path in ("/v1/incidents", "/ui/incidents", "/ui/postmortems", "/ui/action-items"):
            client = browser if path.startswith("/ui") else None
            answer = probe.get(path, None if client else "engineer", client=client)
            probe.expect(answer.status_code == 200, f"{path} after the bad times -> {answer}")


# --- idempotency and the draft queue (findings 6 and 7) ----------------------------------


def _queued(probe: Probe) -> int:
    metrics = probe.get("/metrics", "admin").text
    found = re.search(r'rca_draft_jobs\{status="queued"\} (\d+)', metrics)
    return int(found.group(1)) if found else 0


def queue(probe: Probe) -> None:
    world = probe.world
    burst = 8 if world.quick else 20
    body = example(probe)
    del body["id"]
    body["title"] = f"Attack idempotency burst {time.time_ns()}"
    key = {"Idempotency-Key": f"attack-{time.time_ns()}"}
    answers = probe.together([lambda: probe.post("/v1/incidents", json=body, headers=key)] * burst)
    codes = Counter(a.status_code for a in answers)
    ids = {a.json().get("id") for a in answers if a.is_success}
    probe.expect(
        set(codes) <= {200, 201} and len(ids) == 1, f"idempotent burst: {codes}, ids {ids}"
    )
    listed = probe.get("/v1/incidents", params={"limit": 100}).json()["items"]
    stored = [i for i in listed if i["title"] == body["title"]]
    probe.expect(len(stored) == 1, f"an idempotent burst stored {len(stored)} incidents")
    other = probe.post("/v1/incidents", json=body | {"severity": "SEV1"}, headers=key)
    probe.expect(other.status_code == 422, f"a reused key with another body -> {other}")
    if not stored:
        return
    path = f"/v1/incidents/{stored[0]['id']}/drafts"
    draft_key = {"Idempotency-Key": f"attack-draft-{time.time_ns()}"}
    answers = probe.together([lambda: probe.post(path, json={}, headers=draft_key)] * burst)
    jobs = {a.json().get("id") for a in answers if a.status_code == 202}
    probe.expect(
        len(jobs) == 1 and all(a.status_code == 202 for a in answers),
        f"an idempotent draft burst: {Counter(a.status_code for a in answers)}, jobs {jobs}",
    )
    _caps(probe, path)


def _caps(probe: Probe, path: str) -> None:
    """Fresh engineer keys burst draft requests: no key passes its share (5), the queue never
    passes its cap (20), and refusals say when to retry."""
    keys = []
    for n in range(3 if probe.world.quick else 6):
        made = probe.post(
            "/v1/admin/keys", "admin", json={"name": f"burst {n}", "role": "engineer"}
        )
        keys.append(made.json()["key"])
    per_key, cap = 5, 20
    before = _queued(probe)
    owners = [k for k in keys for _ in range(per_key + 3)]
    tasks = [
        functools.partial(probe.post, path, None, json={}, headers={"Authorization": f"Bearer {k}"})
        for k in owners
    ]
    answers = probe.together(tasks)
    accepted = Counter(k for k, a in zip(owners, answers, strict=True) if a.status_code == 202)
    started = [
        a
        for a in answers
        if a.status_code == 202
        and probe.get(f"/v1/drafts/{a.json()['id']}").json()["status"] != "queued"
    ]
    refused = [a for a in answers if a.status_code == 429]
    probe.expect(
        all(n <= per_key + len(started) for n in accepted.values()),
        f"a key passed its queue share of {per_key}: {sorted(accepted.values())}",
    )
    after = _queued(probe)
    probe.expect(after <= cap, f"{after} drafts queued, over the cap of {cap} (before: {before})")
    probe.expect(bool(refused), "no burst submission was refused: the caps were never reached")
    probe.expect(all(a.headers.get("retry-after") for a in refused), "a 429 without Retry-After")
    probe.expect(
        {a.status_code for a in answers} <= {202, 429},
        f"burst answers: {Counter(a.status_code for a in answers)}",
    )
