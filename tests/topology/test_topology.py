"""Two `rca serve`, two `rca worker`, PostgreSQL and a Chroma server, all on loopback: drafts
(slow fake model) run while a worker is SIGKILLed mid-draft, the Chroma server is killed and
started again, and every database connection is cut. Then every job has ended (succeeded, or
failed as retryable with a reason), every acknowledged write reads back through both servers,
every finalized postmortem is in the Chroma server's index, and the servers answered
throughout, but for a few brief problem+json errors right after the cuts.

Timings go to test-artifacts/topology.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests import postgres
from tests.chroma_server import ChromaServer, free_port
from tests.processes import rca_serve
from tests.topology.client import Answer, Client, Prober
from tests.topology.processes import DELAY_ENV, Worker, fake_model_site, rca_worker
from tests.topology.scenario import (
    ROOT,
    Database,
    Writes,
    create_incident,
    queue_draft,
    review_and_finalize,
    until,
    word_of,
)

LEASE_S = 5
"""The job lease (its smallest allowed value): a killed worker's job is requeued this soon."""
MODEL_DELAY_S = 0.4
"""Per model answer; a draft asks several questions, so it runs for a few seconds."""
CASES = 10
CUT_GRACE_S = 10.0
"""How long after the last database cut a server may still answer with errors."""
PROBLEM = "application/problem+json"


@pytest.fixture
def database(postgres_cluster: postgres.Cluster) -> Iterator[Database]:
    """A fresh migrated database in the session's cluster, dropped afterwards."""
    name = postgres_cluster.create(template=postgres.TEMPLATE)
    try:
        yield Database(postgres_cluster, name)
    finally:
        postgres_cluster.drop(name)


def test_topology_survives_a_killed_worker_a_chroma_restart_and_cut_connections(
    database: Database, tmp_path: Path
) -> None:
    timings: dict[str, Any] = {}
    began = time.monotonic()
    chroma = ChromaServer.start(tmp_path / "chroma")
    env = {
        "RCA_DATABASE_URL": database.cluster.url(database.name),
        "RCA_RETRIEVAL__EMBEDDER": "fake",
        "RCA_RETRIEVAL__CHROMA_URL": chroma.url,
        "RCA_LLM__MODEL": "fake/analyst",
        "RCA_LLM__MAX_RETRIES": "0",
        "RCA_API__LEASE_S": str(LEASE_S),
        "RCA_API__MAX_QUEUED_DRAFTS": "100",
        "RCA_API__MAX_QUEUED_DRAFTS_PER_KEY": "100",
        "RCA_API__WARM_UP": "false",
        "RCA_RETRIEVAL__INDEX_LEASE_S": "10",  # a writer killed mid-sync blocks no longer
        "PYTHONPATH": fake_model_site(tmp_path / "site"),
        DELAY_ENV: str(MODEL_DELAY_S),
    }
    for n in (1, 2):
        (tmp_path / f"serve-{n}").mkdir()
    workers: dict[str, Worker] = {}
    writes = Writes()
    with ExitStack() as stack:
        stack.callback(chroma.stop)
        # The servers one after the other (each takes seconds of CPU to import rca, and must
        # answer within 90 s), then the two workers at once.
        served = [
            stack.enter_context(
                rca_serve(
                    tmp_path / f"serve-{n}" / "data", free_port(), "--draft-workers", "0", **env
                )
            )
            for n in (1, 2)
        ]
        starting = [rca_worker(tmp_path / "workers", name, **env) for name in ("wA", "wB")]
        with ThreadPoolExecutor(2) as pool:
            started: list[Worker] = list(pool.map(stack.enter_context, starting))
        one, two = served
        clients = [Client("serve-1", one.base, one.key), Client("serve-2", two.base, two.key)]
        workers.update({worker.name: worker for worker in started})
        timings["start_s"] = time.monotonic() - began
        prober = stack.enter_context(Prober(clients))

        def client(n: int) -> Client:
            return clients[n % 2]

        # Incidents and drafts, round robin over the two servers.
        for n in range(CASES):
            create_incident(client(n), n, writes)
        incident_ids = list(writes.incidents)
        for n in range(6):
            queue_draft(client(n), incident_ids[n], writes)

        # SIGKILL worker A in the middle of a draft; start C in its place.
        owner = workers["wA"].lease_owner
        t = until(lambda: database.running_for(owner, 0.05) is not None, "wA mid-draft", 60, 0.05)
        timings["until_mid_draft_s"] = t
        killed = database.running_for(owner, 0.05)
        assert killed is not None
        workers["wA"].kill()
        killed_at = datetime.now(UTC)
        workers["wC"] = stack.enter_context(rca_worker(tmp_path / "workers", "wC", **env))
        for n in range(6, 8):
            queue_draft(client(n), incident_ids[n], writes)

        def succeeded() -> list[str]:
            done = database.jobs()
            return [
                j for j in writes.drafts if done[j][0] == "succeeded" and j not in writes.finalized
            ]

        # Two finalized with the Chroma server up, two while it is down.
        until(lambda: len(succeeded()) >= 2, "two drafts", 90)
        for n, job in enumerate(succeeded()[:2]):
            review_and_finalize(client(n), job, writes)
        chroma.kill()
        chroma_down = time.monotonic()
        until(lambda: len(succeeded()) >= 2, "two more drafts", 90)
        for n, job in enumerate(succeeded()[:2]):
            review_and_finalize(client(n + 1), job, writes)
        waiting = database.outbox()
        assert waiting >= 2, f"finalized while the Chroma server was down, yet {waiting} to index"
        timings["outbox_while_chroma_down"] = waiting
        chroma.restart()
        chroma_up = time.monotonic()
        timings["chroma_down_s"] = chroma_up - chroma_down

        # Cut every database connection, three times, while drafts run.
        for n in range(8, CASES):
            queue_draft(client(n), incident_ids[n], writes)

        def mid_draft() -> bool:
            return any(j[0] == "running" and j[2] > 0 for j in database.jobs().values())

        until(mid_draft, "a job mid-draft", 60, 0.05)
        cuts: list[float] = []
        timings["connections_cut"] = []
        for _ in range(3):
            cuts.append(time.monotonic())
            timings["connections_cut"].append(database.cut())
            time.sleep(0.5)

        # Everything ends: no job queued or running (a lost lease is reaped after LEASE_S).
        timings["jobs_settled_s"] = until(
            lambda: database.unfinished() == 0, "every job ended", 120
        )
        stored = database.rows(
            "SELECT at FROM audit_log WHERE action = 'draft.created' AND target_id = %s", killed
        )
        if stored:
            timings["killed_job_stored_after_kill_s"] = (stored[0][0] - killed_at).total_seconds()
        for n, job in enumerate(succeeded()[:2]):
            review_and_finalize(client(n), job, writes)
        timings["outbox_drained_s"] = until(lambda: database.outbox() == 0, "outbox drained", 90)
        time.sleep(1.0)  # a last round of probes after the faults
        prober.__exit__()

        _assert_jobs(database, writes, killed)
        _assert_writes_read_back(clients, writes)
        _assert_indexed(clients, writes)
        _assert_served_throughout(prober.answers(), clients, cuts, (chroma_down, chroma_up))
        for name in ("wB", "wC"):
            assert workers[name].process.poll() is None, (
                f"worker {name} exited:\n{workers[name].log_text()[-3000:]}"
            )
        timings["total_s"] = time.monotonic() - began
        jobs = database.jobs().values()
        timings["jobs"] = {s: sum(j[0] == s for j in jobs) for s in ("succeeded", "failed")}
        timings["failures"] = sorted(str(j[4]) for j in jobs if j[0] == "failed")
        timings["attempts"] = sorted(j[3] for j in jobs)
        timings["refused_writes"] = len(writes.refused)
        timings["probe_errors"] = sum(not a.ok for a in prober.answers())
        timings["probes"] = len(prober.answers())
        _report(timings)


def _assert_jobs(database: Database, writes: Writes, killed: str) -> None:
    jobs = database.jobs()
    assert set(writes.drafts) <= set(jobs)
    for ident, (status, owner, _progress, attempts, error, retryable) in jobs.items():
        assert status in ("succeeded", "failed"), (ident, status, owner)
        assert owner is None, (ident, status, owner)
        if status == "failed":
            assert retryable and error, (ident, error, retryable)
        assert attempts >= 1
    assert jobs[killed][3] >= 2, f"the killed worker's job {killed} was not claimed again"
    created = database.rows(
        "SELECT target_id, count(*) FROM audit_log WHERE action = 'draft.created'"
        " GROUP BY target_id"
    )
    succeeded = {ident for ident, job in jobs.items() if job[0] == "succeeded"}
    assert dict(created) == dict.fromkeys(succeeded, 1), "each success stored exactly once"


def _assert_writes_read_back(clients: list[Client], writes: Writes) -> None:
    for client in clients:
        for ident, title in writes.incidents.items():
            read = client.get(f"/v1/incidents/{ident}")
            assert read.ok and read.json()["title"] == title, read.shown()
        drafts = {job: client.get(f"/v1/drafts/{job}") for job in writes.drafts}
        assert all(read.ok for read in drafts.values()), [r.shown() for r in drafts.values()]
        for job, suggestion, status in writes.decisions:
            found = {s["id"]: s["status"] for s in drafts[job].json()["draft"]["suggestions"]}
            assert found[suggestion] == status, (client.name, job, suggestion, found)
        for job, (postmortem, revision) in writes.finalized.items():
            assert drafts[job].json()["finalized_postmortem_id"] == postmortem
            read = client.get(f"/v1/postmortems/{postmortem}")
            assert read.ok, read.shown()
            assert read.json()["revision"] >= revision, read.shown()


def _assert_indexed(clients: list[Client], writes: Writes) -> None:
    expected = {postmortem for postmortem, _ in writes.finalized.values()}
    assert len(expected) >= 4
    for client in clients:
        for job in writes.finalized:
            n = int(writes.drafts[job].rsplit("-", 1)[1])
            found = client.get(f"/v1/search/similar?q={word_of(n)}%20checkout&k=50&mode=dense")
            assert found.ok, found.shown()
            result = found.json()
            assert not result["degraded"], (
                f"dense search through {client.name} ran degraded after the Chroma restart"
                f" (index writer/reader, not the worker): {result['notes']}"
            )
            hits = {hit["postmortem_id"] for hit in result["hits"]}
            assert expected <= hits, (
                f"finalized postmortems missing from the Chroma index through {client.name}:"
                f" {sorted(expected - hits)} (the index outbox did not reach the Chroma server)"
            )
    check = clients[0].post("/v1/admin/index/check?repair=false")
    assert check.ok, check.shown()
    report = check.json()
    assert report["in_sync"], f"index drift after the outbox drained: {report}"


def _assert_served_throughout(
    probes: list[Answer], clients: list[Client], cuts: list[float], chroma: tuple[float, float]
) -> None:
    """Every probe answered; errors only around the database cuts, brief and problem+json."""
    assert probes
    window = (cuts[0], cuts[-1] + CUT_GRACE_S)
    everything = [a for c in clients for a in list(c.answers)]
    unanswered = [a.shown() for a in everything if a.status == 0]
    assert not unanswered, f"requests the servers did not answer at all: {unanswered}"
    bare = [a.shown() for a in everything if a.status >= 500 and PROBLEM not in a.content_type]
    assert not bare, f"5xx answers that are not problem+json: {bare}"
    for answer in probes:
        if answer.ok:
            continue
        ended = answer.at + answer.seconds
        assert window[0] <= ended and answer.at <= window[1], (
            f"an error outside the database cuts: {answer.shown()}"
        )
        assert answer.seconds < 10, f"a slow error: {answer.shown()}"
    errors = [a for a in probes if not a.ok]
    assert len(errors) <= 10 * len(clients), [a.shown() for a in errors]
    for client in clients:  # each server answers again once the cuts are over
        after = [a for a in probes if a.server == client.name and a.at > window[0] + 1]
        assert any(a.ok for a in after), f"{client.name} stayed broken after the cuts"
    down = [a for a in probes if a.path.startswith("/v1/search") and chroma[0] < a.at < chroma[1]]
    assert all(a.ok for a in down), [a.shown() for a in down if not a.ok]


def _report(timings: dict[str, Any]) -> None:
    out = ROOT / "test-artifacts" / "topology.json"
    out.parent.mkdir(exist_ok=True)
    shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in timings.items()}
    out.write_text(json.dumps(shown, indent=2) + "\n")
