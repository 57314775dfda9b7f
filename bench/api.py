"""HTTP API throughput and latency at 32 concurrent clients, against real server processes.

    .venv/bin/python bench/api.py                      # examples, SQLite, 3 rounds of 10 s
    .venv/bin/python bench/api.py --rounds 5 --only incidents
    .venv/bin/python bench/api.py --scale 10k --backends sqlite,postgresql

Needs `wrk` (Debian package `wrk`), a load generator written in C: a Python client would
spend as much CPU per request as the server on the same 2 cores, and measure itself.

The script runs the real `rca serve --workers N --draft-workers 0` (default 2 server processes:
one Python process cannot use both cores; whatever else `rca serve` starts, such as a shared
embedding service, comes along) with `fake/analyst` as the configured model, and one draft
worker of its own in a separate process at nice 10, as `rca serve --workers N` runs
`rca worker --nice 10`, but with the scripted fake model registered behind litellm's
custom-provider path (no command can do that), so the numbers measure our code, not a model.
Queries are embedded by the bundled model.

Back ends (`--backend`, or `--backends sqlite,postgresql` for one table with both side by
side, run one after the other): `sqlite`, the embedded defaults (SQLite and chroma under the
data directory); `postgresql`, the organisation configuration: a throwaway PostgreSQL cluster
started by the script with fsync and synchronous commit on (`tests/postgres.py`, durable), and
a Chroma server (`tests/chroma_server.py`). Scales (`--scale`): `examples`, the bundled ~60
documents imported afresh each run; `10k`, 10,000 postmortems and 100,000 incidents generated
once into `--data-dir` and reused (`bench/_api_data.py` says how; nothing is downloaded and
document vectors are synthetic, so no bulk embedding with the model).

wrk keeps `--clients` keep-alive connections busy (closed loop: each sends its next request as
soon as the previous answered) from ONE thread: with two, wrk's threads and the server's
event loops (more busy threads than the 2 cores) preempt each other and wrk records its own
scheduling delays as p99 (seen: p99 220 ms with 2 threads vs 45 ms with 1, same server).

Baseline, measured in the same run: `GET /healthz` (routing, middleware and JSON only); each
scenario's p50 is shown as a ratio to it. Rounds interleave the scenarios; the table quotes the
median over rounds of each statistic. Every answer that is not 2xx counts as an error (the
targets ask for none). After each round of draft submissions the queued jobs are dropped, so
the server's one draft worker does not spend the next scenarios drafting thousands of them.
Below the table: the peak RSS (VmHWM) of the server, draft worker and Chroma server processes.

Each row also says what its requests cost: the CPU time of every process of the deployment
(`rca serve` and everything below it, the draft worker, PostgreSQL, the Chroma server) over
the timed run, per answer, read from /proc; and the floor that cost puts under the mean
latency of `--clients` closed-loop clients on this machine's cores (`bench/_api_report.py`).
When the floor is above a target, no scheduling meets it: the request must cost less CPU.
Before each scenario the script waits for those processes to go idle (at most a minute), so
that no scenario pays for the requests the previous one left in flight.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._api_data import (
    BACKENDS,
    SCALES,
    Backend,
    Deployment,
    admin_key,
    command_name,
    cpu_seconds,
    deployment,
    descendants,
    drop_queued_drafts,
    note,
    peak_rss_mib,
)
from bench._api_report import Run, table
from bench._api_scenarios import free_port, scenarios, wait_ready
from bench._api_wrk import Result, Scenario, wrk

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT_ENV = "RCA_BENCH_DEPLOYMENT"
DEFAULT_CACHE = ROOT / ".rca" / "bench-api"
FAKE_MODEL = "fake/analyst"


def worker_settings(running: Deployment) -> Any:
    """The draft worker's settings: the deployment's stores and the fake model."""
    return running.settings(llm={"model": FAKE_MODEL, "max_retries": 0})


def server_environment(running: Deployment) -> dict[str, str]:
    """`rca serve`'s environment: the caller's, with the deployment's stores, the fake model
    (only named: the server processes queue drafts, the bench's worker runs them) and drafts
    queued freely (the benchmark submits thousands)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RCA_DATABASE_URL", DEPLOYMENT_ENV)}
    env.pop("RCA_RETRIEVAL__CHROMA_URL", None)
    env |= {
        "HF_HUB_OFFLINE": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(ROOT),
        "RCA_DATA_DIR": str(running.data_dir),
        "RCA_LLM__MODEL": FAKE_MODEL,
        "RCA_LLM__MAX_RETRIES": "0",
        "RCA_API__MAX_QUEUED_DRAFTS": "1000000",
        "RCA_API__MAX_QUEUED_DRAFTS_PER_KEY": "1000000",
        DEPLOYMENT_ENV: running.to_json(),
    }
    if running.database_url:
        env["RCA_DATABASE_URL"] = running.database_url
    if running.chroma_url:
        env["RCA_RETRIEVAL__CHROMA_URL"] = running.chroma_url
    return env


def work() -> None:
    """The draft worker process, as `rca serve --workers N` starts `rca worker --nice 10`, but
    with the fake model registered (`rca worker` has no way to): a lower CPU priority than the
    server processes, one thread."""
    from api.services import Services
    from api.worker import DraftWorker
    from rca.llm import ScriptedModel, register_provider
    from rca.testing import fake_analyst

    os.nice(10)
    register_provider("fake", ScriptedModel(reply=fake_analyst))
    running = Deployment.from_json(os.environ[DEPLOYMENT_ENV])
    services = Services.open(worker_settings(running))
    DraftWorker(services, "bench-worker").loop()


def measure(
    args: argparse.Namespace,
    running: Deployment,
    base_url: str,
    key: str,
    server: subprocess.Popen[bytes],
    log: Path,
    watched: list[int],
) -> tuple[list[Scenario], Run]:
    """Every chosen scenario, `--rounds` times, interleaved; the server side's CPU time per
    answer read from the `watched` processes (and those below them) around each timed run."""
    wait_ready(base_url, server, log)
    chosen = [
        s
        for s in scenarios(base_url, key, args.scale)
        if not args.only or args.only in s.name or s.group == "baseline"
    ]
    results: dict[str, list[Result]] = {s.name: [] for s in chosen}
    for round_no in range(args.rounds):
        for scenario in chosen:
            waited = settle(watched)
            if waited is None:
                note(f"{scenario.name}: the server side was still busy after {SETTLE_S:g} s")
            wrk(base_url, scenario, key, args.clients, min(2.0, args.seconds))  # warm-up
            used = cpu_seconds(watched)
            result = wrk(base_url, scenario, key, args.clients, args.seconds)
            used = cpu_seconds(watched) - used
            if result.requests:
                result.cpu_ms = 1000 * used / result.requests
            results[scenario.name].append(result)
            if scenario.group == "draft submission":
                drop_queued_drafts(running)
        note(f"{running.backend}: round {round_no + 1}/{args.rounds} done")
    return chosen, Run(running.backend, results, clients=args.clients)


SETTLE_S = 60.0
"""Longest wait for the server side to go idle before a scenario."""
IDLE_SHARE = 0.1
"""Idle: the watched processes used at most this share of one core over half a second."""


def settle(watched: list[int], limit_s: float = SETTLE_S) -> float | None:
    """Wait until the previous scenario's requests are done: wrk stops sending, but the
    server still answers what it had accepted (after the insights scenario, 32 requests of
    ~140 ms of CPU each, which the next scenario's run would otherwise pay for). The seconds
    waited, or None if the processes never went idle within `limit_s`."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        before = cpu_seconds(watched)
        time.sleep(0.5)
        if cpu_seconds(watched) - before <= IDLE_SHARE * 0.5:
            return time.monotonic() - started
    return None


def peak_rss(processes: dict[str, int]) -> dict[str, float]:
    """VmHWM of `rca serve` and every process below it (server processes, embedding service),
    the draft worker and the Chroma server, read while they still run."""
    pids = dict(processes)
    for pid in descendants(processes["rca serve"]):
        pids[f"{command_name(pid)} {pid}"] = pid
    found = {name: peak_rss_mib(pid) for name, pid in pids.items()}
    return {name: mib for name, mib in found.items() if mib is not None}


def run_backend(args: argparse.Namespace, backend: Backend) -> tuple[list[Scenario], Run]:
    """Bring up the back end with its data, start the server and worker, measure, stop."""
    with (
        tempfile.TemporaryDirectory(prefix="rca-bench-api-") as tmp,
        deployment(backend, args.scale, args.data_dir, Path(tmp)) as running,
    ):
        key = admin_key(running)
        port = free_port()
        env = server_environment(running)
        log = Path(tmp) / "serve.log"
        started: list[subprocess.Popen[bytes]] = []
        try:
            started.append(subprocess.Popen([sys.executable, __file__, "--work"], env=env))
            with log.open("wb") as out:
                started.append(
                    subprocess.Popen(
                        [
                            *(str(Path(sys.executable).parent / "rca"), "serve"),
                            *("--port", str(port), "--workers", str(args.workers)),
                            *("--draft-workers", "0"),
                        ],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            worker, server = started
            watched = [server.pid, worker.pid, *running.pids.values()]
            base_url = f"http://127.0.0.1:{port}"
            chosen, measured = measure(args, running, base_url, key, server, log, watched)
            measured.peak_rss_mib = peak_rss(
                {"rca serve": server.pid, "draft worker": worker.pid, **running.pids}
            )
        finally:
            stop(started)
    return chosen, measured


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop what this script started, and whatever those started that outlived them."""
    below = [pid for process in processes for pid in descendants(process.pid)]
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for pid in below:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def backend_list(text: str) -> list[Backend]:
    """`sqlite,postgresql` -> the back ends, each once, in that order."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(BACKENDS)}; got {text!r}"
        )
    return [b for b in BACKENDS if b in names]


def positive(kind: type[int] | type[float]) -> Any:
    def check(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
        return value

    return check


def parser() -> argparse.ArgumentParser:
    parsing = argparse.ArgumentParser(
        prog="bench/api.py", description=(__doc__ or "").splitlines()[0]
    )
    parsing.add_argument("--scale", choices=SCALES, default="examples")
    parsing.add_argument("--backend", choices=BACKENDS, default="sqlite")
    parsing.add_argument(
        "--backends",
        type=backend_list,
        help="comma-separated back ends to run one after the other, in one table "
        "(e.g. sqlite,postgresql); replaces --backend",
    )
    parsing.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"where the 10k data is generated once and kept (default {DEFAULT_CACHE})",
    )
    parsing.add_argument("--clients", type=positive(int), default=32)
    parsing.add_argument(
        "--seconds", type=positive(float), default=10.0, help="per scenario and round"
    )
    parsing.add_argument("--rounds", type=positive(int), default=3)
    parsing.add_argument("--only", help="run only scenarios whose name contains this")
    parsing.add_argument(
        "--workers",
        type=positive(int),
        default=2,
        help="server processes, as `rca serve --workers`",
    )
    parsing.add_argument(
        "--prepare-only",
        action="store_true",
        help="generate the 10k data of the back ends into --data-dir (if not there yet), then stop",
    )
    parsing.add_argument("--work", action="store_true", help=argparse.SUPPRESS)
    return parsing


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.work:
        work()
        return
    if shutil.which("wrk") is None:
        raise SystemExit("bench/api.py: needs wrk (Debian package `wrk`: apt-get install wrk)")
    backends: list[Backend] = args.backends or [args.backend]
    if args.prepare_only:
        if args.scale != "10k":
            raise SystemExit(
                "bench/api.py: --prepare-only needs --scale 10k (examples are not kept)"
            )
        for backend in backends:
            with (
                tempfile.TemporaryDirectory(prefix="rca-bench-api-") as tmp,
                deployment(backend, args.scale, args.data_dir, Path(tmp)),
            ):
                note(f"{backend}: the 10k data is in {args.data_dir / backend}")
        return
    runs: list[Run] = []
    chosen: list[Scenario] = []
    for backend in backends:
        chosen, measured = run_backend(args, backend)
        runs.append(measured)
    print(
        f"\nscale {args.scale}; rca serve --workers {args.workers}, drafts in a separate "
        "process at nice 10, "
        f"{args.clients} concurrent clients (wrk), {args.seconds:g} s per scenario per round, "
        f"{args.rounds} round(s); medians over rounds; ratio = p50 / baseline p50 of the same "
        "back end"
    )
    print(table(runs, chosen))


if __name__ == "__main__":
    main()
