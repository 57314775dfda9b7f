"""`GET /v1/insights` latency over 10,000 postmortems and 100,000 incidents (issue 19: under
300 ms at p50 on SQLite).

    .venv/bin/python bench/insights.py                           # 10,000 / 100,000, 30 requests
    .venv/bin/python bench/insights.py --postmortems 1000 --incidents 10000   # a quick check
    .venv/bin/python bench/insights.py --data-dir /tmp/ins       # keep the data; reuse it next time

The data is synthetic and seeded: incidents spread over the default range of the report (the
last five years), five severities, one to three of 40 services (a few much more often than the
rest), times to detect, mitigate and resolve drawn from log-normal distributions with some of
each missing; postmortems over the same years (a few undated) whose root causes, triggers,
factors and causal chains use phrases that the drafting library (`rca/drafting/remedies.yaml`)
recognises as failure modes, and some that it does not. Everything is written through
`Store.save` in batches of 1,000, one transaction each (timed). Nothing is embedded or indexed:
the insights read only the database (saved postmortems wait in the index outbox, which nothing
consumes: the server runs with no workers and no warm-up).

Measured, in order:
1. the cold `rca.insights.facts.refresh` over every postmortem (what the first report after an
   import pays), after emptying the postmortem facts so that a reused data directory measures
   the same thing, and then the same call with nothing stale (what every report pays);
2. `report()` in this process for each query (no HTTP), with the default report's pieces: its
   queries as our code reads them and as bare `fetchall`s, and the JSON serialisation; after
   `gc.freeze()`, as the server's start-up does;
3. the same queries over HTTP against the real app (`create_app`) on uvicorn in a separate
   process on loopback, sequential requests on one keep-alive connection, with an engineer key.

Baseline, measured in the same run: `GET /healthz` on the same server. The queries are taken in
turn (one request each, round after round) after a few warm-up rounds, so a burst of load from
elsewhere on the machine falls on all of them alike; p50/p90/max are over the rounds and each
p50 is shown as a ratio to the baseline's p50. `--profile` adds cProfile's view of the default
`report()` call.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import http.client
import io
import json
import math
import os
import platform
import pstats
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile
from rca.config import Settings
from rca.domain import Incident, Postmortem, Severity
from rca.insights.measures import default_range, report
from rca.store import Store
from rca.store.keys import ApiKeys, Role

TARGET_MS = 300.0
BATCH = 1000
SEVERITY_WEIGHTS = {"SEV1": 3, "SEV2": 12, "SEV3": 35, "SEV4": 32, "SEV5": 18}
"""Incidents: most are minor."""
PM_SEVERITY_WEIGHTS = {"SEV1": 20, "SEV2": 40, "SEV3": 30, "SEV4": 8, "SEV5": 2}
"""Postmortems: written mostly for the bad ones."""
SERVICES = [
    *("checkout", "payments", "auth", "search", "catalog", "cart", "orders", "inventory"),
    *("shipping", "notifications", "email-sender", "api-gateway", "edge-proxy", "cdn"),
    *("dns", "identity", "billing", "invoicing", "ledger", "fraud-check", "recommendations"),
    *("reviews", "media-store", "image-resizer", "user-profile", "sessions", "rate-limiter"),
    *("kafka-events", "postgres-main", "redis-cache", "elasticsearch", "k8s-control-plane"),
    *("ci-runners", "deploy-bot", "metrics-pipeline", "logging", "feature-flags", "vault"),
    *("scheduler", "reporting"),
]
MODE_PHRASES = [
    "Config pushed to all regions at once from {service}",
    "The {service} change was deployed to 100% of hosts without a canary stage",
    "No connection limit on the {service} client pool",
    "The {service} connection pool was exhausted under normal load",
    "Clients of {service} retried immediately without backoff",
    "Retries without backoff amplified the load on {service}",
    "The cache was flushed and a thundering herd hit {service}",
    "The TLS certificate of {service} expired",
    "An API token used by {service} expired unnoticed",
    "A traffic spike of 3x exceeded what {service} could serve",
    "Disk full on the {service} primary",
    "The restore from backup had never been tested for {service}",
    "Leap day date arithmetic in {service} produced invalid timestamps",
    "A memory leak in {service} grew steadily over two weeks",
    "Consumer lag on the {service} queue grew for hours",
    "A cleanup job deleted production data in {service}",
    "Customers reported errors before any alert fired",
    "No alert on the {service} error rate",
    "Rolling back {service} took hours and was manual",
    "A malformed configuration file was not validated before deploy",
    "A regex with catastrophic backtracking in {service}",
    "An unindexed query on {service} scanned the full table",
    "A network partition caused split brain in the {service} cluster",
    "DNS lookups for {service} timed out",
    "An upstream provider changed the default behaviour of its API",
    "A single primary database was a single point of failure for {service}",
    "Monitoring depended on the failing {service}",
    "A manual deploy step for {service} was done by hand without a runbook",
    "Unattended upgrade of the kernel on {service} hosts",
    "Health checks on {service} removed healthy instances",
    "A command with a typo removed far more servers than intended",
    "A noisy neighbour shared by all tenants slowed {service}",
]
"""Root causes, triggers and factors that match the drafting library's failure modes."""
NEUTRAL_PHRASES = [
    "An interaction between two recent features of {service} was not understood",
    "The {service} team was in the middle of a reorganisation",
    "Ownership of {service} was unclear",
    "A rare code path in {service} had a bug",
    "Documentation of {service} was out of date",
]
"""Causes the library does not recognise."""
TRIGGERS = [
    "Deploy of {service} 4.{n}.0",
    "Config pushed to all regions at once",
    "A scheduled job started at the top of the hour",
    "A partner launched a marketing campaign",
    "Routine database maintenance on {service}",
]
FACTORS = [
    ("Consumer lag had no alert, only a dashboard", "monitoring"),
    ("Load tests ran with a warm cache", "process"),
    ("The on-call engineer was new to {service}", "people"),
    ("The runbook for {service} was outdated", "process"),
    ("A cloud provider zone was degraded", "external"),
    ("The data centre had a power event", "environment"),
    ("{service} ran an old client library", "technology"),
    ("No rate limit on the {service} API", "technology"),
    ("Alerts for {service} went to email only", "monitoring"),
]


def settings(data_dir: Path) -> Settings:
    """SQLite in `data_dir`, the fake embedder, no warm-up (nothing is indexed)."""
    return Settings(
        data_dir=data_dir,
        database_url=None,
        retrieval={"embedder": "fake", "chroma_url": None},
        api={"warm_up": False},
    )


# --- synthetic data ---------------------------------------------------------------------------


def window() -> tuple[datetime, datetime]:
    """The default range of the report (the last five years to the end of this month), cut at
    now: every incident falls in the default report."""
    start, _ = default_range(datetime.now(UTC).date())
    return datetime(start.year, start.month, start.day, tzinfo=UTC), datetime.now(UTC)


def pick_services(rng: random.Random, weights: list[float]) -> list[str]:
    count = rng.choices((1, 2, 3), (60, 30, 10))[0]
    chosen: list[str] = []
    while len(chosen) < count:
        service = rng.choices(SERVICES, weights)[0]
        if service not in chosen:
            chosen.append(service)
    return chosen


def minutes(rng: random.Random, median: float, sigma: float) -> timedelta:
    """A log-normal duration: most are short, a few very long."""
    return timedelta(minutes=median * math.exp(rng.gauss(0, sigma)))


def incidents(count: int, seed: int = 19) -> Iterator[Incident]:
    rng = random.Random(seed)
    start, end = window()
    span = (end - start).total_seconds() - 86_400
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(SERVICES))]
    for n in range(count):
        started = start + timedelta(seconds=rng.uniform(0, span))
        services = pick_services(rng, weights)
        detected = started + minutes(rng, 6, 1.2) if rng.random() > 0.10 else None
        mitigated = started + minutes(rng, 45, 1.0) if rng.random() > 0.15 else None
        resolved = None
        if rng.random() > 0.05:
            resolved = (mitigated or started) + minutes(rng, 180, 0.9)
        yield Incident.model_validate(
            {
                "id": f"inc-bench-{n:06d}",
                "title": f"{services[0]} errors ({rng.choice(('5xx', 'latency', 'timeouts'))})",
                "severity": rng.choices(list(SEVERITY_WEIGHTS), list(SEVERITY_WEIGHTS.values()))[0],
                "services": services,
                "started_at": started,
                "detected_at": detected,
                "mitigated_at": mitigated,
                "resolved_at": resolved,
                "summary": f"{services[0]} returned errors for some requests.",
            }
        )


def postmortems(count: int, seed: int = 23) -> Iterator[Postmortem]:
    rng = random.Random(seed)
    start, end = window()
    days = (end - start).days
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(SERVICES))]
    for n in range(count):
        services = pick_services(rng, weights)
        day = (start + timedelta(days=rng.randrange(days))).date()

        def phrase(bank: list[str], services: list[str] = services) -> str:
            return rng.choice(bank).format(service=rng.choice(services), n=rng.randrange(20))

        causes = [
            phrase(MODE_PHRASES if rng.random() < 0.8 else NEUTRAL_PHRASES)
            for _ in range(rng.choices((1, 2, 3), (50, 35, 15))[0])
        ]
        factors = [
            {"text": text.format(service=rng.choice(services)), "category": category}
            for text, category in rng.sample(FACTORS, rng.randrange(5))
        ]
        named = rng.choice(services) if rng.random() < 0.7 else "the backend"
        chain_texts = [
            ("root_cause", causes[0]),
            ("trigger", phrase(TRIGGERS)),
            ("cause", f"Error rate of {named} rose"),
            ("symptom", f"Requests to {rng.choice(services)} timed out"),
            ("impact", "Customers could not complete orders"),
        ][: rng.randrange(3, 6)]
        chain = [
            {
                "id": f"n{i}",
                "kind": kind,
                "text": text,
                "leads_to": [f"n{i + 1}"] if i + 1 < len(chain_texts) else [],
            }
            for i, (kind, text) in enumerate(chain_texts)
        ]
        yield Postmortem.model_validate(
            {
                "id": f"pm-bench-{n:05d}",
                "title": f"{services[0]} outage on {day.isoformat()}",
                "date": day if rng.random() > 0.02 else None,
                "severity": (
                    rng.choices(list(PM_SEVERITY_WEIGHTS), list(PM_SEVERITY_WEIGHTS.values()))[0]
                    if rng.random() > 0.05
                    else None
                ),
                "services": services,
                "summary": f"{services[0]} failed for a while. {causes[0]}.",
                "trigger": phrase(TRIGGERS) if rng.random() < 0.5 else None,
                "root_causes": causes,
                "contributing_factors": factors,
                "causal_chain": chain,
                "action_items": [
                    {"text": f"Fix {services[0]}", "kind": rng.choice(("prevent", "detect"))}
                ],
                "lessons": {"went_well": ["Rollback was quick."], "went_wrong": [], "lucky": []},
            }
        )


def load(store: Store, documents: Iterator[Any]) -> tuple[int, float, float]:
    """Save in batches of `BATCH`, one transaction each: (count, seconds generating, seconds
    saving)."""
    count, making, saving = 0, 0.0, 0.0
    while True:
        started = time.perf_counter()
        batch = [doc for _, doc in zip(range(BATCH), documents, strict=False)]
        making += time.perf_counter() - started
        if not batch:
            return count, making, saving
        started = time.perf_counter()
        store.save(batch, "bench")
        saving += time.perf_counter() - started
        count += len(batch)


def build(data_dir: Path, n_postmortems: int, n_incidents: int) -> dict[str, Any]:
    """Fill a fresh data directory, or reuse one built before with the same sizes."""
    built_file = data_dir / "bench-insights.json"
    if built_file.exists():
        built = json.loads(built_file.read_text())
        if (built["postmortems"], built["incidents"]) == (n_postmortems, n_incidents):
            return {**built, "reused": True}
        raise SystemExit(f"bench/insights.py: {data_dir} holds other sizes: {built}")
    store = Store.open(settings(data_dir))
    try:
        pms, pm_make, pm_save = load(store, postmortems(n_postmortems))
        incs, inc_make, inc_save = load(store, incidents(n_incidents))
    finally:
        store.close()
    built = {
        "postmortems": pms,
        "incidents": incs,
        "postmortems_generate_s": pm_make,
        "postmortems_save_s": pm_save,
        "incidents_generate_s": inc_make,
        "incidents_save_s": inc_save,
        "database_mib": sum(p.stat().st_size for p in data_dir.glob("*.db*")) / 2**20,
    }
    built_file.write_text(json.dumps(built))
    return {**built, "reused": False}


# --- measuring --------------------------------------------------------------------------------


QUERIES: list[tuple[str, str, dict[str, Any]]] = [
    ("default (last 5 years)", "/v1/insights", {}),
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


def cold_refresh(store: Store) -> tuple[int, float, float]:
    """(postmortems refreshed, seconds for all of them, ms for the refresh with none stale)."""
    from sqlalchemy import delete

    from rca.insights import facts
    from rca.store.engine import write_transaction
    from rca.store.insight_tables import postmortem_fact_state, postmortem_facts

    with write_transaction(store.engine) as conn:
        conn.execute(delete(postmortem_facts))
        conn.execute(delete(postmortem_fact_state))
    started = time.perf_counter()
    done = facts.refresh(store)
    cold = time.perf_counter() - started
    warm = sorted(timed(lambda: facts.refresh(store))[0] for _ in range(9))[4]
    return done, cold, warm


def in_process(store: Store, rounds: int) -> dict[str, list[float]]:
    """`report()` (and `to_csv` for the CSV) per query, and the pieces of the default one."""
    from sqlalchemy import select

    from api.routes_insights import Table, to_csv
    from rca.insights import facts
    from rca.store.engine import read_transaction
    from rca.store.incident_facts import incident_facts_between
    from rca.store.insight_tables import incident_facts, incident_services
    from rca.store.postmortem_facts import fact_counts

    def run(args: dict[str, Any]) -> Any:
        args = dict(args)
        if args.pop("csv", False):
            return to_csv(report(store, **args), Table.months)
        return report(store, **args)

    since, until = default_range(datetime.now(UTC).date())
    low = datetime(since.year, since.month, since.day, tzinfo=UTC)
    high = datetime(until.year, until.month, until.day, tzinfo=UTC)

    def rows(by_service: bool) -> Any:
        with read_transaction(store.engine) as conn:
            return incident_facts_between(conn, low, high, by_service=by_service)

    # The statements `incident_facts_between` runs for the default report, fetched as the
    # driver's tuples: what SQLite costs without SQLAlchemy's rows and our objects.
    f = incident_facts.c
    plain = select(f.incident_id, f.month, f.severity, f.ttd_s, f.ttm_s, f.ttr_s)
    plain = plain.where(f.started_at >= low, f.started_at < high)
    joined = plain.join(incident_services, incident_services.c.incident_id == f.incident_id)
    joined = joined.add_columns(incident_services.c.service)

    def raw(query: Any) -> Any:
        with read_transaction(store.engine) as conn:
            return conn.execute(query).cursor.fetchall()

    kinds = ["failure_mode", "factor_category", "chain_service"]
    parts: dict[str, Callable[[], Any]] = {
        "  facts.refresh (none stale)": lambda: facts.refresh(store),
        "  incident facts query": lambda: rows(False),
        "    its SQL alone (sqlite3 fetchall)": lambda: raw(plain),
        "  incident facts by service query": lambda: rows(True),
        "    its SQL alone (sqlite3 fetchall, join)": lambda: raw(joined),
        "  postmortem fact counts": lambda: fact_counts(store.engine, kinds, since, until),
    }
    found = report(store)
    parts["  report.model_dump_json()"] = found.model_dump_json
    series: dict[str, list[float]] = {name: [] for name, _, _ in QUERIES}
    series.update({name: [] for name in parts})
    for round_no in range(rounds + 3):
        for name, _, args in QUERIES:
            ms, _ = timed(lambda args=args: run(args))  # type: ignore[misc]
            if round_no >= 3:
                series[name].append(ms)
        for name, action in parts.items():
            ms, _ = timed(action)
            if round_no >= 3:
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


def over_http(port: int, key: str, rounds: int) -> dict[str, list[float]]:
    """Sequential requests on one keep-alive connection, the queries in turn."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {key}"}

    def get(path: str) -> float:
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        body = answer.read()
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status != 200:
            raise SystemExit(f"bench/insights.py: {path} answered {answer.status}: {body[:300]!r}")
        return elapsed

    deadline = time.monotonic() + 180
    while True:
        try:
            get("/healthz")
            break
        except (OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise SystemExit("bench/insights.py: the server did not start") from None
            connection.close()
            time.sleep(0.5)
    paths = [("GET /healthz (baseline)", "/healthz")] + [(n, p) for n, p, _ in QUERIES]
    series: dict[str, list[float]] = {name: [] for name, _ in paths}
    for round_no in range(rounds + 3):
        for name, path in paths:
            ms = get(path)
            if round_no >= 3:
                series[name].append(ms)
    connection.close()
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
    parser.add_argument("--requests", type=int, default=30, help="timed rounds per query")
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
            done, cold, warm = cold_refresh(store)
            print(
                f"facts.refresh, cold: {done} postmortems in {cold:.2f} s "
                f"({cold * 1000 / max(done, 1):.2f} ms per postmortem); "
                f"with none stale: {warm:.1f} ms (median of 9)"
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
                f"in-process, no HTTP ({args.requests} rounds after 3 warm-up; indented: pieces "
                "of the default report):",
                local,
                None,
            )
            if args.profile:
                profile(store)
            key, _ = ApiKeys(store.engine).create("bench insights", Role.ENGINEER)
        finally:
            store.close()
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(data_dir), str(port)],
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        try:
            remote = over_http(port, key, args.requests)
        finally:
            server.terminate()
            server.wait(timeout=30)
    base = percentile(remote["GET /healthz (baseline)"], 50)
    print()
    show(
        f"HTTP, one uvicorn process, sequential keep-alive requests ({args.requests} rounds "
        "after 3 warm-up; ratio = p50 / GET /healthz p50):",
        remote,
        "GET /healthz (baseline)",
    )
    default = percentile(remote[QUERIES[0][0]], 50)
    verdict = "PASS" if default < TARGET_MS else "FAIL"
    print(
        f"\n{verdict}: GET /v1/insights (default) p50 {default:.1f} ms against the target "
        f"{TARGET_MS:.0f} ms ({default / base:.0f}x GET /healthz p50 {base:.2f} ms)"
    )


if __name__ == "__main__":
    main()
