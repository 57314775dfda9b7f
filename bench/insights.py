"""`GET /v1/insights` latency over 10,000 postmortems and 100,000 incidents (issue 19: under
300 ms at p50 on SQLite).

    .venv/bin/python bench/insights.py                           # 10,000 / 100,000, 30 rounds
    .venv/bin/python bench/insights.py --postmortems 1000 --incidents 10000   # a quick check
    .venv/bin/python bench/insights.py --data-dir /tmp/ins       # keep the data; reuse it next time

The data is synthetic and seeded (`bench/_insights_data.py`), written through `Store.save` in
batches of 1,000, one transaction each (timed). Nothing is embedded or indexed: the insights
read only the database (the server runs with no workers and no warm-up).

The report reads in-memory columns of the incidents' and postmortems' facts, kept per process
and brought up to date on each request (`rca/store/incident_facts.py`,
`rca/store/postmortem_columns.py`). So each request is one of three kinds, timed apart:
- cold: the first request of a process (or after a large change), which reads all the facts;
- warm: nothing changed since the last request (a version check, then the measures);
- after a write: one incident saved (or one postmortem revised) since the last request, which
  reads that incident again (or that postmortem's facts, found in the request, and all the
  postmortem columns again). Each write alternates between a changed copy (another severity
  and services, other times) and the original, so the data stays what it was.

Measured, in order:
1. the cold `rca.insights.facts.refresh` over every postmortem (what `rca import` and the draft
   workers pay, out of any request), after emptying the postmortem facts so that a reused data
   directory measures the same thing; before it, one report with every postmortem stale (it
   finds `REQUEST_LIMIT` of them and leaves the rest out);
2. `report()` in this process (no HTTP): each query warm; the default one cold, after an
   incident write and after a postmortem write; and its pieces; after `gc.freeze()`, as the
   server's start-up does;
3. over HTTP against the real app (`create_app`) on uvicorn in a separate process on loopback,
   sequential requests on one keep-alive connection, with an engineer key: the first request
   of each of `--starts` fresh servers (cold), then the queries warm and the default one after
   each kind of write.

Baseline, measured in the same run: `GET /healthz` on the same server. The rows are taken in
turn (one request each, round after round) after a few warm-up rounds, so a burst of load from
elsewhere on the machine falls on all of them alike; p50/p90/max are over the rounds and each
p50 is shown as a ratio to the baseline's p50. `--profile` adds cProfile's view of the default
`report()` call.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import http.client
import io
import os
import platform
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile
from bench._insights_data import BATCH, Writer, build, settings
from rca.domain import Severity
from rca.insights import facts
from rca.insights.measures import default_range, report
from rca.store import Store
from rca.store.keys import ApiKeys, Role

TARGET_MS = 300.0
WARM_UP = 3
DEFAULT = "default (last 5 years)"
AFTER_INCIDENT = "default, after one incident write"
AFTER_POSTMORTEM = "default, after one postmortem write"
QUERIES: list[tuple[str, str, dict[str, Any]]] = [
    (DEFAULT, "/v1/insights", {}),
    ("service=checkout", "/v1/insights?service=checkout", {"services": ["checkout"]}),
    (
        "severity=SEV1&severity=SEV2",
        "/v1/insights?severity=SEV1&severity=SEV2",
        {"severities": [Severity.SEV1, Severity.SEV2]},
    ),
    (
        "since=2025-01-01&until=2026-01-01",
        "/v1/insights?since=2025-01-01&until=2026-01-01",
        {"since": date(2025, 1, 1), "until": date(2026, 1, 1)},
    ),
    ("insights.csv?table=months", "/v1/insights.csv?table=months", {"csv": True}),
]
"""(name, path, `report()` arguments): the same query in-process and over HTTP."""


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return (time.perf_counter() - started) * 1000, value


def cold_refresh(store: Store) -> tuple[int, float, float, float]:
    """(postmortems refreshed after the report that found them all stale, seconds for them,
    ms for that report, ms for the check with none stale)."""
    from sqlalchemy import delete

    from rca.store.engine import write_transaction
    from rca.store.insight_tables import postmortem_fact_state, postmortem_facts

    with write_transaction(store.engine) as conn:
        conn.execute(delete(postmortem_facts))
        conn.execute(delete(postmortem_fact_state))
    all_stale, _ = timed(lambda: report(store))
    started = time.perf_counter()
    done = facts.refresh(store)
    cold = time.perf_counter() - started
    warm = sorted(timed(lambda: facts.catch_up(store))[0] for _ in range(9))[4]
    return done, cold, all_stale, warm


def in_process(store: Store, rounds: int) -> dict[str, list[float]]:
    """`report()` (and `to_csv` for the CSV) per query, and the pieces of the default one."""
    from api.routes_insights import Table, to_csv
    from rca.store import incident_facts, postmortem_columns

    def run(args: dict[str, Any]) -> Any:
        args = dict(args)
        if args.pop("csv", False):
            return to_csv(report(store, **args), Table.months)
        return report(store, **args)

    engine = store.engine

    def cold() -> Any:
        incident_facts.forget_columns(engine)
        postmortem_columns.forget_columns(engine)
        return report(store)

    def incidents_cold() -> Any:
        incident_facts.forget_columns(engine)
        return incident_facts.incident_columns(engine)

    def postmortems_cold() -> Any:
        postmortem_columns.forget_columns(engine)
        return postmortem_columns.postmortem_columns(engine)

    def default() -> Any:
        return report(store)

    since, until = default_range(datetime.now(UTC).date())
    kinds = ["failure_mode", "factor_category", "chain_service", "service"]
    writer = Writer(store)
    after: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "default, cold (all facts read)": (lambda: None, cold),
        AFTER_INCIDENT: (writer.incident, default),
        AFTER_POSTMORTEM: (writer.postmortem, default),
    }
    parts: dict[str, Callable[[], Any]] = {
        "  facts.catch_up (none stale)": lambda: facts.catch_up(store),
        "  incident columns, warm (version check)": lambda: incident_facts.incident_columns(engine),
        "  incident columns, cold (read all)": incidents_cold,
        "  postmortem columns, cold (read all)": postmortems_cold,
        "  postmortem counts (columns, warm)": lambda: postmortem_columns.count_facts(
            postmortem_columns.postmortem_columns(engine), kinds, since, until
        ),
        "  report.model_dump_json()": report(store).model_dump_json,
    }
    series: dict[str, list[float]] = {name: [] for name, _, _ in QUERIES}
    series.update({name: [] for name in [*after, *parts]})
    for round_no in range(rounds + WARM_UP):
        steps: list[tuple[str, Callable[[], Any]]] = [
            (name, functools.partial(run, args)) for name, _, args in QUERIES
        ]
        for name, (write, action) in after.items():
            steps.append(("", write))
            steps.append((name, action))
        steps += list(parts.items())
        for name, action in steps:
            ms, _ = timed(action)
            if name and round_no >= WARM_UP:
                series[name].append(ms)
    return series


def serve(data_dir: Path, port: int) -> None:
    """The child process: the real app, no workers, on uvicorn on loopback."""
    import uvicorn

    from api.app import create_app

    app = create_app(settings(data_dir), workers=0)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    """Sequential requests on one keep-alive connection, with the key."""

    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + 180
        while True:
            try:
                self.get("/healthz")
                return
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise SystemExit("bench/insights.py: the server did not start") from None
                self.connection.close()
                time.sleep(0.5)

    def get(self, path: str) -> float:
        started = time.perf_counter()
        self.connection.request("GET", path, headers=self.headers)
        answer = self.connection.getresponse()
        body = answer.read()
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status != 200:
            raise SystemExit(f"bench/insights.py: {path} answered {answer.status}: {body[:300]!r}")
        return elapsed


def server(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(data_dir), str(port)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    return process, port


def over_http(
    data_dir: Path, key: str, rounds: int, starts: int, writer: Writer
) -> dict[str, list[float]]:
    """The first request of `starts` fresh servers; then, on one more, the queries in turn
    with the default one after each kind of write (made by this process)."""
    series: dict[str, list[float]] = {"GET /healthz (baseline)": [], "default, cold (first)": []}
    series.update({name: [] for name, _, _ in QUERIES})
    series.update({AFTER_INCIDENT: [], AFTER_POSTMORTEM: []})
    for n in range(starts + 1):
        process, port = server(data_dir)
        try:
            client = Client(port, key)
            series["default, cold (first)"].append(client.get("/v1/insights"))
            if n < starts:
                continue
            for round_no in range(rounds + WARM_UP):
                timings = [("GET /healthz (baseline)", client.get("/healthz"))]
                timings += [(name, client.get(path)) for name, path, _ in QUERIES]
                writer.incident()
                timings.append((AFTER_INCIDENT, client.get("/v1/insights")))
                writer.postmortem()
                timings.append((AFTER_POSTMORTEM, client.get("/v1/insights")))
                if round_no >= WARM_UP:
                    for name, ms in timings:
                        series[name].append(ms)
            client.connection.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
    return series


def show(title: str, series: dict[str, list[float]], baseline: str | None) -> None:
    print(title)
    ratio_head = f" {'ratio':>7s}" if baseline else ""
    print(f"  {'':42s} {'p50 ms':>8s} {'p90 ms':>8s} {'max ms':>8s}{ratio_head}")
    base = percentile(series[baseline], 50) if baseline else None
    for name, values in series.items():
        p50 = percentile(values, 50)
        ratio = f" {p50 / base:6.1f}x" if base else ""
        print(f"  {name:42s} {p50:8.1f} {percentile(values, 90):8.1f} {max(values):8.1f}{ratio}")


def profile(store: Store) -> None:
    """cProfile of the default report, top functions by own time and by cumulative time."""
    report(store)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        report(store)
    profiler.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(22)
        text = out.getvalue()
        print(f"\ncProfile, 5 default reports, by {order}:")
        print(text[text.index("   ncalls") :].rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postmortems", type=int, default=10_000)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30, help="timed rounds per row")
    parser.add_argument("--starts", type=int, default=5, help="fresh servers for the cold row")
    parser.add_argument("--data-dir", type=Path, help="build here and keep (default: temporary)")
    parser.add_argument("--profile", action="store_true", help="cProfile the default report")
    parser.add_argument("--serve", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return
    print(
        f"environment: {platform.python_implementation()} {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {len(os.sched_getaffinity(0))} cores, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory(prefix="rca-bench-insights-") as scratch:
        data_dir = args.data_dir or Path(scratch)
        data_dir.mkdir(parents=True, exist_ok=True)
        built = build(data_dir, args.postmortems, args.incidents)
        if built["reused"]:
            print(f"data: reused {data_dir}; as built then:")
        print(
            f"data: {built['postmortems']} postmortems (generate "
            f"{built['postmortems_generate_s']:.1f} s, save {built['postmortems_save_s']:.1f} s), "
            f"{built['incidents']} incidents (generate {built['incidents_generate_s']:.1f} s, "
            f"save {built['incidents_save_s']:.1f} s); Store.save in batches of {BATCH}; "
            f"database {built['database_mib']:.0f} MiB"
        )
        store = Store.open(settings(data_dir))
        try:
            done, cold, all_stale, warm = cold_refresh(store)
            print(
                f"postmortem facts, all stale: the next report took {all_stale:.0f} ms (found "
                f"{facts.REQUEST_LIMIT}, left the rest out); facts.refresh of the rest (as "
                f"`rca import` and the workers do): {done} in {cold:.2f} s "
                f"({cold * 1000 / max(done, 1):.2f} ms per postmortem); the check with none "
                f"stale: {warm:.1f} ms (median of 9)"
            )
            found = report(store)
            modes = ", ".join(f"{c.key} {c.postmortems}" for c in found.failure_modes[:6])
            print(
                f"default report: {found.incidents} incidents, {found.postmortems} postmortems "
                f"({found.undated_postmortems} undated), {len(found.by_service)} services, "
                f"{len(found.failure_modes)} failure modes (top: {modes}), "
                f"JSON {len(found.model_dump_json()) / 1024:.0f} KiB"
            )
            # As the server's start-up does: what is loaded stays out of the collector's passes.
            gc.collect()
            gc.freeze()
            local = in_process(store, args.requests)
            print()
            show(
                f"in-process, no HTTP ({args.requests} rounds after {WARM_UP} warm-up; "
                "indented: pieces of the default report):",
                local,
                None,
            )
            if args.profile:
                profile(store)
            key, _ = ApiKeys(store.engine).create("bench insights", Role.ENGINEER)
            remote = over_http(data_dir, key, args.requests, args.starts, Writer(store))
        finally:
            store.close()
    base = percentile(remote["GET /healthz (baseline)"], 50)
    print()
    show(
        f"HTTP, one uvicorn process, sequential keep-alive requests ({args.requests} rounds "
        f"after {WARM_UP} warm-up; cold: the first request of {args.starts} fresh servers; "
        "ratio = p50 / GET /healthz p50):",
        remote,
        "GET /healthz (baseline)",
    )
    for name in (DEFAULT, AFTER_INCIDENT):
        p50 = percentile(remote[name], 50)
        verdict = "PASS" if p50 < TARGET_MS else "FAIL"
        print(
            f"{verdict}: GET /v1/insights ({name}) p50 {p50:.1f} ms against the target "
            f"{TARGET_MS:.0f} ms ({p50 / base:.0f}x GET /healthz p50 {base:.2f} ms)"
        )


if __name__ == "__main__":
    main()
