"""A database connection cut in the middle of a draft job (found by the topology test): the
lease holder's writes are tried again on a new connection, and a draft whose attempt broke on
a cut connection goes back to the queue instead of failing. On real PostgreSQL, whose
backend the test ends (`pg_terminate_backend`) right before a chosen statement."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from api.services import Services
from api.worker import DraftWorker
from rca.config import Settings
from rca.domain import Incident
from rca.llm import ScriptedModel, register_provider
from rca.store.jobs import DraftJobs, JobStatus
from rca.testing import fake_analyst
from tests import postgres
from tests.factories import incident_data

HOUR = timedelta(hours=1)


class Cutter:
    """Ends the database session under the next `times` statements that match `pattern`, just
    before each is sent (as an operator's `pg_terminate_backend` or a restart would)."""

    def __init__(self, engine: Engine, cluster: postgres.Cluster, pattern: str, times: int):
        self.cluster = cluster
        self.pattern = re.compile(pattern)
        self.times = times
        self.cut = 0
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.cut < self.times and self.pattern.search(statement):
            self.cut += 1
            pid = conn.connection.dbapi_connection.info.backend_pid
            self.cluster.execute(f"SELECT pg_terminate_backend({pid}, 5000)")


@pytest.fixture
def services(postgres_cluster: postgres.Cluster, tmp_path: Path) -> Iterator[Services]:
    """Services on a fresh migrated PostgreSQL database, drafting with the scripted analyst."""
    register_provider("fake", ScriptedModel(reply=fake_analyst))
    name = postgres_cluster.create(template=postgres.TEMPLATE)
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=postgres_cluster.url(name),
        retrieval={"embedder": "fake"},
        llm={"model": "fake/analyst", "max_retries": 0},
    )
    opened = Services.open(settings)
    try:
        yield opened
    finally:
        opened.close()
        postgres.close_connections()
        postgres_cluster.drop(name)


def _queued(services: Services) -> str:
    incident = Incident.model_validate(incident_data())
    services.store.save_incident(incident, "test")
    return services.jobs.submit(incident.id, "fake/analyst", "engineer", HOUR).id


def test_a_lease_holder_s_write_is_tried_again_on_a_new_connection(
    services: Services, postgres_cluster: postgres.Cluster
) -> None:
    jobs: DraftJobs = services.jobs
    ident = _queued(services)
    assert jobs.claim("w1") is not None
    cutter = Cutter(services.store.engine, postgres_cluster, r"^UPDATE drafts SET", times=3)
    assert jobs.report(ident, "w1", 0.5, "halfway")  # three cuts, the fourth try goes through
    assert cutter.cut == 3
    seen = jobs.get(ident)
    assert (seen.status, seen.progress, seen.message) == (JobStatus.RUNNING, 0.5, "halfway")

    cutter.times += 4  # more cuts in a row than tries: the caller hears of it
    with pytest.raises(OperationalError):
        jobs.report(ident, "w1", 0.6, "later")
    assert jobs.get(ident).progress == 0.5


def test_a_draft_cut_off_from_the_database_goes_back_to_the_queue_then_succeeds(
    services: Services, postgres_cluster: postgres.Cluster
) -> None:
    ident = _queued(services)
    worker = DraftWorker(services, "w1")
    # The worker reads the incident once it holds the job: that read's connection is cut
    # (reads are not tried again; the attempt ends).
    cutter = Cutter(services.store.engine, postgres_cluster, r"\bFROM incidents\b", times=1)
    assert worker.run_once()
    assert cutter.cut == 1
    job = services.jobs.get(ident)
    assert (job.status, job.attempts, job.lease_owner, job.error) == (
        JobStatus.QUEUED,
        1,
        None,
        None,
    )
    assert job.message == "requeued: the database connection was cut while drafting"

    assert worker.run_once()
    done = services.jobs.get(ident)
    assert (done.status, done.attempts) == (JobStatus.SUCCEEDED, 2)
    assert done.draft is not None


def test_a_draft_cut_off_on_its_last_attempt_fails_as_retryable_with_the_reason(
    services: Services, postgres_cluster: postgres.Cluster
) -> None:
    ident = _queued(services)
    worker = DraftWorker(services, "w1")
    Cutter(services.store.engine, postgres_cluster, r"\bFROM incidents\b", times=2)
    assert worker.run_once() and worker.run_once()  # max_attempts is 2
    job = services.jobs.get(ident)
    assert (job.status, job.attempts, job.retryable) == (JobStatus.FAILED, 2, True)
    assert job.error == "the database connection was cut while drafting (2 attempts)"
    assert worker.run_once() is False  # nothing left to run


def test_a_finished_draft_is_stored_though_the_connection_storing_it_was_cut(
    services: Services, postgres_cluster: postgres.Cluster
) -> None:
    ident = _queued(services)
    storing = r"^UPDATE drafts SET status=\S+, progress="  # the job's success, not a reap
    cutter = Cutter(services.store.engine, postgres_cluster, storing, 1)
    assert DraftWorker(services, "w1").run_once()
    assert cutter.cut == 1
    done = services.jobs.get(ident)
    assert (done.status, done.attempts, done.lease_owner) == (JobStatus.SUCCEEDED, 1, None)
    assert done.draft is not None
