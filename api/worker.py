"""Draft workers: threads inside the server, or `rca worker` as a separate process.

A worker claims a job (a lease), drafts it, reports progress (which renews the lease) and
stores the draft. If the lease is lost meanwhile (the worker was too slow, or another one took
over after it was presumed dead), the worker stops writing. An unexpected failure marks the job
failed and retryable; a redaction failure is not retryable (the same input fails again). A
database connection cut mid-draft is not the draft's failure: the job goes back to the queue
(failing as retryable only after its last attempt).
Between jobs a worker brings the vector index up to date with finalized postmortems, and finds
the insights' facts of new or revised postmortems (a batch at a time), so that a report does not
have to.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from typing import IO

from api import metrics
from api.services import Services
from rca.domain import Draft
from rca.errors import RcaError
from rca.insights import facts
from rca.redaction import RedactionFailed
from rca.store.jobs import connection_lost
from rca.store.readback import draft_notes

log = logging.getLogger("rca.worker")


class LeaseLost(Exception):
    """Another worker owns the job now."""


class DraftWorker:
    """Claims and runs draft jobs until stopped."""

    def __init__(self, services: Services, name: str, poll_s: float = 0.5) -> None:
        self.services = services
        self.name = name
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """Run one job if one is waiting; True if one ran."""
        jobs = self.services.jobs
        job = jobs.claim(self.name)
        if job is None:
            return False
        log.info("draft %s claimed by %s (attempt %d)", job.id, self.name, job.attempts)

        def progress(message: str, fraction: float) -> None:
            if not jobs.report(job.id, self.name, fraction, message):
                raise LeaseLost(job.id)

        def partial(so_far: Draft) -> None:
            if not jobs.report_partial(job.id, self.name, so_far):
                raise LeaseLost(job.id)

        started = time.monotonic()
        outcome: metrics.DraftOutcome = "failed"
        try:
            self.services.attach_changes(job.incident_id)
            stored = self.services.store.read_incident(job.incident_id)
            if not jobs.record_incident_revision(job.id, self.name, stored.revision):
                raise LeaseLost(job.id)
            drafter = self.services.drafter(job.model)
            draft = drafter.draft(
                stored.incident, progress=progress, draft_id=job.id, partial=partial
            )
            metrics.model_usage(draft.usage, self.services.allowed_models())
            if stored.set_aside:  # stored values today's rules refuse: say what was left out
                notes = [*draft_notes(list(stored.set_aside)), *draft.notes]
                draft = draft.model_copy(update={"notes": notes})
            outcome = "succeeded" if jobs.succeed(job.id, self.name, draft) else "lease_lost"
            if outcome == "lease_lost":
                log.warning("draft %s finished after its lease was lost; not stored", job.id)
        except LeaseLost:
            outcome = "lease_lost"
            log.warning("draft %s: lease lost, stopping", job.id)
        except Exception as err:
            self._after_failure(job.id, err)
        finally:
            metrics.draft_finished(outcome, time.monotonic() - started)
        return True

    def _after_failure(self, ident: str, err: Exception) -> None:
        """End an attempt that raised `err`: a cut database connection (the attempt did not
        fail of its own) gives the job back to the queue, or fails it as retryable after its
        last attempt; a redaction failure is final (the same input fails again); anything
        else fails the job as retryable."""
        jobs = self.services.jobs
        if connection_lost(err):
            log.warning("draft %s: the database connection was cut; requeueing it", ident)
            jobs.requeue(ident, self.name, "the database connection was cut while drafting")
        elif isinstance(err, RedactionFailed):
            jobs.fail(ident, self.name, f"redaction failed, nothing was sent: {err}", False)
        elif isinstance(err, RcaError):
            jobs.fail(ident, self.name, str(err), True)
        else:
            log.error("draft %s failed", ident, exc_info=err)
            jobs.fail(ident, self.name, f"unexpected error: {type(err).__name__}", True)

    def sync_index(self) -> None:
        """Index finalized postmortems waiting in the outbox (skipped when there are none)."""
        try:
            if self.services.store.index_state.pending_count():
                self.services.retrieval.indexer.sync()
        except RcaError as err:
            log.warning("index sync failed: %s", err)

    def refresh_facts(self) -> None:
        """Find the facts of up to a batch of stale postmortems (one cheap query when none)."""
        try:
            facts.catch_up(self.services.store, limit=facts.BATCH)
        except RcaError as err:
            log.warning("insights facts refresh failed: %s", err)

    def loop(self) -> None:
        """Claim and run jobs until `stop` is called."""
        while not self._stop.is_set():
            try:
                ran = self.run_once()
                if not ran:
                    self.sync_index()
                    self.refresh_facts()
                    self._stop.wait(self.poll_s)
            except Exception as err:  # the store was briefly unavailable, say: keep serving
                if connection_lost(err):
                    log.warning(
                        "worker %s: the database connection was cut; trying again", self.name
                    )
                else:
                    log.exception("worker %s: loop error", self.name)
                time.sleep(self.poll_s)

    def start(self) -> None:
        """Run the loop on a daemon thread."""
        self._thread = threading.Thread(target=self.loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to stop and wait a little for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


class InServerWorkers:
    """The draft workers of one server process.

    With several server processes on one data directory (`rca serve --workers N`), only one of
    them runs draft workers: the one holding an exclusive lock on `draft-workers.lock` there.
    The others try again every few seconds, so when that process exits or is restarted,
    another one takes over. (More drafting capacity comes from `rca worker` processes, which
    need no lock: the job table's leases keep workers from running a job twice.)
    """

    def __init__(self, services: Services, count: int, retry_s: float = 5.0) -> None:
        self.services = services
        self.count = count
        self.retry_s = retry_s
        self.running: list[DraftWorker] = []
        self._stop = threading.Event()
        self._lock_file: IO[bytes] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the workers now if this process gets the lock, else keep trying."""
        if self.count == 0:
            return
        if not self._try_lock():
            self._thread = threading.Thread(target=self._wait, name="draft-lock", daemon=True)
            self._thread.start()

    def _try_lock(self) -> bool:
        path = self.services.settings.data_dir / "draft-workers.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        prefix = f"{socket.gethostname()}-{os.getpid()}"
        self.running = [DraftWorker(self.services, f"{prefix}-{n + 1}") for n in range(self.count)]
        for worker in self.running:
            worker.start()
        log.info("this process runs %d draft worker(s)", self.count)
        return True

    def _wait(self) -> None:
        while not self._stop.wait(self.retry_s):
            if self._try_lock():
                return

    def stop(self) -> None:
        """Stop the workers and give the lock up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.retry_s + 1)
        for worker in self.running:
            worker.stop()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
