"""The crash script: `rca serve` SIGKILLed at random moments during bursts of writes, restarted
on the same data, then checked.

    .venv/bin/python -m tests.crash.run --backend sqlite --kills 100 --seed 1

Each round: (re)start the server -- one process forked from a process that imported rca once,
every `--fresh-every`th round the `rca` console script afresh, every `--workers-every`th round
`rca serve --workers 2` (two server processes and an `rca worker`); send the lost requests again
and a sample of acknowledged ones (`tests.crash.replays`); run client threads that create
incidents, request drafts (scripted model), review and finalize (`tests.crash.workload`); kill
the whole process group with SIGKILL at a random moment. Every `--check-every` rounds, and at
the end, the integrity checks run (`tests.crash.checks`). At the end the server is started once
more, every lost request settled, the draft jobs left running must finish or fail within a
bounded wait, and every acknowledged write is read back. Bounded by `--kills` and `--budget`.
Exits 1 when anything was found.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from rca.config import Settings
from rca.store import Store
from rca.store.engine import make_engine
from rca.store.keys import ApiKeys, Role
from tests import postgres
from tests.api.support import free_port
from tests.crash import checks
from tests.crash.client import Client, Ledger, Lost
from tests.crash.replays import replay_acknowledged, settle_lost
from tests.crash.server import SITE, Forker, NotRestarting, Server, group_members, start_fresh
from tests.crash.workload import Actors, Stories, burst
from tests.processes import MARK

LEASE_S = 5
"""The draft lease in the rounds (the least allowed): jobs a kill left running are retaken soon."""
MAX_ATTEMPTS = 4
"""Starts of a draft job before a lost lease fails it: kills come every few seconds."""


@dataclass(frozen=True)
class Options:
    """How a crash run goes."""

    backend: str
    kills: int
    seed: int = 1
    budget_s: float = 1_800.0
    threads: int = 4
    workers_every: int = 5
    """Every this many rounds run `rca serve --workers 2` (0: never)."""
    fresh_every: int = 10
    """Every this many rounds start the `rca` console script afresh rather than fork (0: never)."""
    burst_s: tuple[float, float] = (0.2, 6.0)
    """The kill comes this many seconds (uniformly drawn) after the burst starts."""
    replays: int = 4
    """Acknowledged writes sent again after each restart."""
    check_every: int = 10
    settle_s: float = 150.0
    progress: bool = False
    """A line on stderr every 10 rounds."""


@dataclass
class Summary:
    """What a run did and found."""

    backend: str
    kills: int = 0
    processes_killed: int = 0
    starts: dict[str, int] = field(default_factory=dict)
    restart_s: list[float] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=dict)
    integrity: str = "not run"
    stories: int = 0
    finalized: int = 0
    elapsed_s: float = 0.0
    ledger: Ledger = field(default_factory=Ledger)

    @property
    def ok(self) -> bool:
        return not self.ledger.findings

    def text(self) -> str:
        c = self.ledger.counts
        slowest = max(self.restart_s, default=0.0)
        lines = [
            f"backend {self.backend}: {self.kills} kills ({self.processes_killed} processes),"
            f" starts {self.starts}, restart to /healthz median"
            f" {sorted(self.restart_s)[len(self.restart_s) // 2] if self.restart_s else 0:.1f} s"
            f" max {slowest:.1f} s, {self.elapsed_s:.0f} s in all",
            f"  requests sent {c['sent']}, acknowledged {c['acknowledged']}, lost {c['lost']},"
            f" refused {c['refused'] + c['refused.409'] + c['refused.429']}",
            f"  replays {c['replays']} (lost {c['replays.lost']}, acknowledged"
            f" {c['replays.acknowledged']}); lost but found applied: review"
            f" {c['lost_applied.review']}, finalize {c['lost_applied.finalize']}",
            f"  stories {self.stories}, finalized {self.finalized}; verified incidents"
            f" {c['verified.incidents']}, drafts {c['verified.drafts']}, reviews"
            f" {c['verified.reviews']}, postmortems {c['verified.postmortems']}",
            f"  draft jobs at the end {self.jobs}",
            f"  duplicates {c['finding.duplicate']}, missing acknowledged writes"
            f" {c['finding.missing']}, stuck {c['finding.stuck']}, errors {c['finding.error']},"
            f" restart failures {c['finding.restart']}",
            f"  integrity ({c['integrity_checks']} checks): {self.integrity}",
        ]
        per_kind = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k.count(".") == 1)
        lines.append(f"  by kind: {per_kind}")
        lines += [f"  FOUND {f}" for f in self.ledger.findings[:50]]
        return "\n".join(lines)


def clean_environment() -> dict[str, str]:
    """This process's environment without rca's settings (the test run's mark kept)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RCA_") or k == MARK}


def run_crash(options: Options, work: Path, database_url: str | None = None) -> Summary:
    """A crash run on the data in `work` (SQLite there unless `database_url` is given)."""
    started = time.monotonic()
    summary = Summary(options.backend)
    settings = Settings(data_dir=work / "data", database_url=database_url)
    store = Store.open(settings)
    try:
        keys = (
            ApiKeys(store.engine).create("crash engineer", Role.ENGINEER)[0],
            ApiKeys(store.engine).create("crash reviewer", Role.REVIEWER)[0],
        )
    finally:
        store.close()
    site = work / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITE)
    env = {
        "RCA_DATA_DIR": str(settings.data_dir.resolve()),
        "RCA_RETRIEVAL__EMBEDDER": "fake",
        "RCA_API__WARM_UP": "false",
        "RCA_LLM__MODEL": "fake/analyst",
        "RCA_LLM__MAX_RETRIES": "0",
        "RCA_API__LEASE_S": str(LEASE_S),
        "RCA_API__MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "RCA_API__DRAFT_WORKERS": "2",
        "RCA_API__MAX_QUEUED_DRAFTS": "200",
        "RCA_API__MAX_QUEUED_DRAFTS_PER_KEY": "200",
        **({"RCA_DATABASE_URL": database_url} if database_url else {}),
    }
    engine = make_engine(settings)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(clean_environment())  # the forker and servers see only `env`
    try:
        with Forker() as forker:
            crashes = _Crashes(options, summary, keys, engine, forker, env, work)
            try:
                crashes.rounds()
                crashes.final()
            finally:
                summary.stories = len(crashes.stories.all)
                summary.finalized = sum(s.postmortem is not None for s in crashes.stories.all)
    except NotRestarting as err:
        summary.ledger.find("restart", str(err))
    finally:
        os.environ.clear()
        os.environ.update(saved)
        engine.dispose()
    summary.elapsed_s = time.monotonic() - started
    return summary


@dataclass
class _Crashes:
    """A run's rounds: what they share."""

    options: Options
    summary: Summary
    keys: tuple[str, str]
    """The engineer's and the reviewer's API key."""
    engine: Engine
    forker: Forker
    env: dict[str, str]
    work: Path

    def __post_init__(self) -> None:
        self.rng = random.Random(self.options.seed)
        self.ledger = self.summary.ledger
        self.stories = Stories(f"crash-{self.options.seed}-{os.getpid()}", self.rng)
        site = str(self.work / "site")
        path = os.pathsep.join(p for p in (site, os.environ.get("PYTHONPATH", "")) if p)
        self.fresh_env = {**self.env, "PYTHONPATH": path}

    def how(self, round_no: int) -> str:
        """How round `round_no` starts its server."""
        workers, fresh = self.options.workers_every, self.options.fresh_every
        if workers and round_no % workers == workers - 1:
            return "workers2"
        if fresh and round_no % fresh == 1:
            return "fresh"
        return "forked"

    def start(self, how: str) -> Server:
        port, log = free_port(), self.work / "serve.log"
        if how == "forked":
            server = self.forker.start(port, self.env, log)
        else:
            server = start_fresh(port, 2 if how == "workers2" else 1, self.fresh_env, log)
        self.summary.starts[how] = self.summary.starts.get(how, 0) + 1
        try:
            self.summary.restart_s.append(server.wait_ready())
        except NotRestarting:
            server.kill()
            raise
        return server

    def actors(self, server: Server) -> Actors:
        return Actors(Client(server.port, self.keys[0]), Client(server.port, self.keys[1]))

    def rounds(self) -> None:
        """Start, replay, burst, kill: until `kills` kills or the time budget is spent."""
        deadline = time.monotonic() + self.options.budget_s
        for round_no in range(self.options.kills):
            if time.monotonic() > deadline:
                break
            if self.options.progress and round_no % 10 == 0:
                c = self.ledger.counts
                sys.stderr.write(
                    f"round {round_no}: {c['acknowledged']} acknowledged, {c['lost']} lost,"
                    f" {len(self.ledger.findings)} findings\n"
                )
            server = self.start(self.how(round_no))
            try:
                self.round(round_no, server)
            finally:
                server.kill()  # already killed, unless the round failed

    def round(self, round_no: int, server: Server) -> None:
        """Replays, a check now and then, then a burst the caller ends with SIGKILL."""
        actors, ledger, rng = self.actors(server), self.ledger, self.rng
        try:
            settle_lost(self.stories, actors, ledger, rng)
            replay_acknowledged(self.stories, actors, ledger, rng, self.options.replays)
        except Lost as err:
            ledger.find("error", f"round {round_no}: the server stopped answering: {err}")
        if self.options.check_every and round_no % self.options.check_every == 0:
            checks.integrity(self.engine, ledger)
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=burst,
                args=(self.stories, actors, ledger, stop, rng.randrange(2**32)),
                daemon=True,
            )
            for _ in range(self.options.threads)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(*self.options.burst_s))
        if not group_members(server.pgid):
            ledger.find("error", f"round {round_no}: the server ended before the kill")
        self.summary.processes_killed += server.kill()
        self.summary.kills += 1
        stop.set()
        for thread in threads:
            thread.join(60)

    def final(self) -> None:
        """The last start: settle what was lost, wait for the jobs, read everything back."""
        ledger, summary = self.ledger, self.summary
        server = self.start("forked")
        try:
            actors = self.actors(server)
            for _ in range(3):
                settle_lost(self.stories, actors, ledger, self.rng)
            summary.jobs = checks.jobs_settle(self.engine, ledger, self.options.settle_s)
            checks.acknowledged(self.stories, actors, ledger)
            checks.duplicates(self.engine, self.stories.prefix, ledger)
            problems = checks.integrity(self.engine, ledger)
            summary.integrity = "ok" if not problems else "; ".join(problems)
        finally:
            server.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.crash.run", description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], required=True)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget", type=float, default=1_800.0, help="seconds")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workers-every", type=int, default=5)
    parser.add_argument("--fresh-every", type=int, default=10)
    args = parser.parse_args(argv)
    if args.kills < 1 or args.budget <= 0 or args.threads < 1:
        parser.error("--kills and --threads must be at least 1 and --budget positive")
    options = Options(
        args.backend,
        args.kills,
        args.seed,
        args.budget,
        args.threads,
        args.workers_every,
        args.fresh_every,
        progress=True,
    )
    with tempfile.TemporaryDirectory(prefix="rca-crash-") as tmp:
        work = Path(tmp)
        cluster = None
        url = None
        if args.backend == "postgresql":
            pg_bin = postgres.binaries()
            if pg_bin is None:
                parser.error("PostgreSQL is not installed (`make postgres`)")
            cluster = postgres.Cluster.start(pg_bin)
            url = cluster.url(cluster.create())
        try:
            summary = run_crash(options, work, url)
        finally:
            if cluster is not None:
                cluster.stop()
    print(summary.text())  # noqa: T201
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
