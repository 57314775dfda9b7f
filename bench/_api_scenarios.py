"""The requests `bench/api.py` times, found through the HTTP API of the running server.

At the `10k` scale the reads spread over ~1,000 of the 100,000 incidents and ~1,400 of the
10,000 postmortems (ids `_insights_data` gives them); at `examples`, over the newest 50 of each.
Similar search is timed three ways: an incident's similar postmortems (the synthetic incidents'
texts repeat, so their query vectors, and often their whole results, are kept), free text never
asked before (each request appends its own marker, so each pays a real query embedding and a
search) and one text asked again and again (answered from the result each server process
keeps, `RCA_RETRIEVAL__RESULT_CACHE`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bench import _insights_data
from bench._api_wrk import Scenario

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(base_url: str, path: str, key: str, body: str | None = None) -> Any:
    """One request with the standard library (set-up only)."""
    request = urllib.request.Request(
        base_url + path,
        data=body.encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def wait_ready(
    base_url: str, server: subprocess.Popen[bytes], log: Path, deadline_s: float = 900.0
) -> None:
    """Wait for `/healthz` (at 10k, each server process first loads the lexical corpus and the
    insights' columns); stop with the server's log if it ends or never answers."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if server.poll() is not None:
            raise SystemExit(f"bench/api.py: rca serve ended:\n{tail(log)}")
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(
        f"bench/api.py: rca serve did not answer /healthz in {deadline_s:.0f} s:\n{tail(log)}"
    )


def tail(log: Path, lines: int = 40) -> str:
    """The end of the server's log."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"(no log: {err})"


def finished_draft(base_url: str, key: str, incident_id: str, deadline_s: float = 900.0) -> str:
    """A draft of the incident, run to the end by the draft worker; its id. The worker loads
    the embedding model for the draft's similar search first (slow on a busy machine)."""
    job = get(base_url, f"/v1/incidents/{incident_id}/drafts", key, "{}")
    started = time.monotonic()
    state = job
    while time.monotonic() - started < deadline_s:
        state = get(base_url, f"/v1/drafts/{job['id']}", key)
        if state["status"] == "succeeded":
            return str(job["id"])
        if state["status"] == "failed":
            raise SystemExit(f"bench/api.py: the set-up draft failed: {state}")
        time.sleep(0.5)
    raise SystemExit(
        f"bench/api.py: the set-up draft did not finish in {deadline_s:.0f} s: {state['status']}"
    )


def ids(base_url: str, key: str, scale: str) -> tuple[list[str], list[str]]:
    """Incident and postmortem ids the reads spread over."""
    if scale == "10k":
        return (
            [f"inc-bench-{n:06d}" for n in range(0, 100_000, 97)],
            [f"pm-bench-{n:05d}" for n in range(0, 10_000, 7)],
        )
    incidents = [i["id"] for i in get(base_url, "/v1/incidents?limit=50", key)["items"]]
    postmortems = [p["id"] for p in get(base_url, "/v1/postmortems?limit=50", key)["items"]]
    return incidents, postmortems


def query_texts(count: int = 200) -> list[str]:
    """Free-text searches: a service and a failure as an engineer would describe them."""
    texts = []
    for n in range(count):
        service = _insights_data.SERVICES[n % len(_insights_data.SERVICES)]
        phrase = _insights_data.MODE_PHRASES[(n * 7) % len(_insights_data.MODE_PHRASES)]
        texts.append(f"{service} errors and timeouts. " + phrase.format(service=service))
    return texts


def search_path(text: str) -> str:
    return "/v1/search/similar?k=5&q=" + urllib.parse.quote(text)


def scenarios(base_url: str, key: str, scale: str) -> list[Scenario]:
    """Every scenario; the first is the baseline."""
    incidents, postmortems = ids(base_url, key, scale)
    draft_id = finished_draft(base_url, key, incidents[0])
    incident = json.loads(
        (ROOT / "examples/incidents/inc-2026-01-checkout-db-pool.json").read_text()
    )
    incident["id"] = "inc-new-__ID__"
    texts = query_texts()
    return [
        Scenario("GET /healthz (baseline)", "baseline", ["/healthz"]),
        Scenario("GET /v1/incidents/{id}", "reads", [f"/v1/incidents/{i}" for i in incidents]),
        Scenario("GET /v1/incidents?limit=20", "reads", ["/v1/incidents?limit=20"]),
        Scenario(
            "GET /v1/postmortems/{id}", "reads", [f"/v1/postmortems/{p}" for p in postmortems]
        ),
        Scenario("GET /v1/postmortems?limit=20", "reads", ["/v1/postmortems?limit=20"]),
        Scenario("GET /v1/drafts/{id}", "reads", [f"/v1/drafts/{draft_id}"]),
        Scenario("GET /v1/action-items?limit=20", "reads", ["/v1/action-items?limit=20"]),
        Scenario("GET /v1/insights", "insights", ["/v1/insights"]),
        Scenario(
            "GET /v1/incidents/{id}/similar",
            "search",
            [f"/v1/incidents/{i}/similar?k=5" for i in incidents],
        ),
        Scenario(
            "GET /v1/search/similar (new text)",
            "search",
            [search_path(f"{text} (ticket __ID__)") for text in texts],
        ),
        Scenario("GET /v1/search/similar (same text)", "search", [search_path(texts[0])]),
        Scenario(
            "POST /v1/incidents",
            "incident creation",
            ["/v1/incidents"],
            "POST",
            json.dumps(incident),
        ),
        Scenario(
            "POST /v1/incidents/{id}/drafts",
            "draft submission",
            [f"/v1/incidents/{i}/drafts" for i in incidents],
            "POST",
            "{}",
        ),
    ]
