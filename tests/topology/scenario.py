"""What the topology test does through the API and sees in the database: incidents, drafts,
review decisions and finalizations, each write kept only once a server acknowledged it (2xx);
and small SQL reads of the job table and the index outbox, on a connection of their own."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.postgres import USER, Cluster
from tests.topology.client import Answer, Client

ROOT = Path(__file__).parents[2]
INCIDENT_FILE = ROOT / "examples" / "incidents" / "inc-2026-01-checkout-db-pool.json"
ACCEPTED = ("summary", "action_item")
"""The sections whose suggestions a review accepts before finalizing."""


def until(check: Callable[[], bool], what: str, seconds: float, every_s: float = 0.2) -> float:
    """Wait until `check()`; the seconds it took (fails after `seconds`)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"timed out after {seconds} s: {what}"
        time.sleep(every_s)
    return time.monotonic() - started


@dataclass
class Database:
    """The test's database, read (and cut) with psycopg, one short connection at a time."""

    cluster: Cluster
    name: str

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(host=str(self.cluster.root), user=USER, dbname=self.name) as conn:
            return list(conn.execute(sql.encode(), params).fetchall())

    def jobs(self) -> dict[str, tuple[str, str | None, float, int, str | None, bool]]:
        """Job id -> (status, lease owner, progress, attempts, error, retryable)."""
        found = self.rows(
            "SELECT id, status, lease_owner, progress, attempts, error, retryable FROM drafts"
        )
        return {row[0]: (row[1], row[2], row[3], row[4], row[5], row[6]) for row in found}

    def running_for(self, owner: str, at_least: float = 0.0) -> str | None:
        """A job `owner` holds the lease of and has reported progress on, if any."""
        found = self.rows(
            "SELECT id FROM drafts WHERE status = 'running' AND lease_owner = %s AND progress > %s",
            owner,
            at_least,
        )
        return str(found[0][0]) if found else None

    def unfinished(self) -> int:
        return int(
            self.rows("SELECT count(*) FROM drafts WHERE status IN ('queued', 'running')")[0][0]
        )

    def outbox(self) -> int:
        return int(self.rows("SELECT count(*) FROM index_outbox")[0][0])

    def cut(self) -> int:
        """Terminate every other connection to the database; how many there were."""
        found = self.rows(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            self.name,
        )
        return len(found)


@dataclass
class Writes:
    """The writes the servers acknowledged (2xx), to read back through every server."""

    incidents: dict[str, str] = field(default_factory=dict)
    """Incident id -> its title."""
    drafts: dict[str, str] = field(default_factory=dict)
    """Draft job id -> its incident."""
    decisions: list[tuple[str, str, str]] = field(default_factory=list)
    """(draft id, suggestion id, status it now has)."""
    finalized: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Draft id -> (postmortem id, revision)."""
    refused: list[Answer] = field(default_factory=list)
    """Write attempts not acknowledged (each retried)."""


def incident(n: int) -> dict[str, Any]:
    """The example incident as case `n`: its own id and a word of its own in the title."""
    body: dict[str, Any] = json.loads(INCIDENT_FILE.read_text())
    body["id"] = f"inc-topology-{n:02d}"
    body["title"] = f"{body['title']} (topology case{n:02d})"
    return body


def word_of(n: int) -> str:
    return f"case{n:02d}"


def attempt(send: Callable[[], Answer], writes: Writes, tries: int = 8) -> Answer:
    """Send a write until a server acknowledges it, or answers a client error (4xx): a 5xx or
    no answer at all is retried (after a database cut, say) and kept in `writes.refused`."""
    for _ in range(tries):
        answer = send()
        if answer.ok or 400 <= answer.status < 500:
            return answer
        writes.refused.append(answer)
        time.sleep(0.5)
    return answer


def create_incident(client: Client, n: int, writes: Writes) -> None:
    body = incident(n)
    answer = attempt(lambda: client.post("/v1/incidents", body), writes)
    assert answer.ok, answer.shown()
    writes.incidents[body["id"]] = body["title"]


def queue_draft(client: Client, incident_id: str, writes: Writes) -> str:
    path = f"/v1/incidents/{incident_id}/drafts"
    answer = attempt(lambda: client.post(path, {"model": "fake/analyst"}), writes)
    assert answer.status == 202, answer.shown()
    ident = str(answer.json()["id"])
    writes.drafts[ident] = incident_id
    return ident


def review_and_finalize(client: Client, job_id: str, writes: Writes) -> None:
    """Accept the summary and action item suggestions of a succeeded draft, then finalize it.
    A decision that was not acknowledged is not kept (the version is read again)."""
    read = attempt(lambda: client.get(f"/v1/drafts/{job_id}"), writes)
    assert read.ok, read.shown()
    job = read.json()
    version = int(job["version"])
    for suggestion in job["draft"]["suggestions"]:
        if suggestion["section"] not in ACCEPTED:
            continue
        path = f"/v1/drafts/{job_id}/suggestions/{suggestion['id']}/review"
        answer = client.post(path, {"decision": "accept"}, **{"If-Match": f'"{version}"'})
        if answer.ok:
            writes.decisions.append((job_id, suggestion["id"], "accepted"))
            version = int(answer.json()["version"])
            continue
        writes.refused.append(answer)
        again = attempt(lambda: client.get(f"/v1/drafts/{job_id}"), writes)
        assert again.ok, again.shown()
        version = int(again.json()["version"])
    path = f"/v1/drafts/{job_id}/finalize"
    answer = attempt(lambda: client.post(path, None, **{"If-Match": f'"{version}"'}), writes)
    if answer.status != 201 and writes.refused and writes.refused[-1].path == path:
        # A refused attempt may have been stored before its answer was lost: then the retry
        # finds the version moved on. Stored but never acknowledged: nothing to hold it to.
        again = attempt(lambda: client.get(f"/v1/drafts/{job_id}"), writes)
        if again.ok and again.json()["finalized_postmortem_id"]:
            return
    assert answer.status == 201, answer.shown()
    done = answer.json()
    writes.finalized[job_id] = (str(done["postmortem_id"]), int(done["revision"]))
