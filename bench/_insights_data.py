"""The synthetic data of `bench/insights.py`: seeded incidents and postmortems over the default
range of the report, saved through `Store.save` in batches, and kept in a data directory for
the next run.

Incidents spread over the last five years, five severities, one to three of 40 services (a few
much more often than the rest), times to detect, mitigate and resolve drawn from log-normal
distributions with some of each missing; postmortems over the same years (a few undated) whose
root causes, triggers, factors and causal chains use phrases that the drafting library
(`rca/drafting/remedies.yaml`) recognises as failure modes, and some that it does not.
`Writer` makes the single writes the benchmark times a request after.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rca.config import Settings
from rca.domain import Incident, Postmortem, Severity
from rca.insights.measures import default_range
from rca.store import Store

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


class Writer:
    """One write per call: an incident (or a postmortem) saved changed, then as it was."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.count = 0

    def incident(self) -> None:
        n, changed = divmod(self.count, 2)
        self.count += 1
        original = self.store.get_incident(f"inc-bench-{n:06d}")
        if changed:
            severity = Severity.SEV1 if original.severity is not Severity.SEV1 else Severity.SEV5
            update: dict[str, Any] = {
                "severity": severity,
                "services": [*original.services[1:], "bench-write"],
                "detected_at": original.detected_at and original.started_at,
            }
            original = original.model_copy(update=update)
        self.store.save([original], "bench-write")

    def postmortem(self) -> None:
        n, changed = divmod(self.count, 2)
        self.count += 1
        stored = self.store.get_postmortem(f"pm-bench-{n:05d}")
        pm = stored.postmortem
        if changed:
            causes = ["The TLS certificate of the bench service expired", *pm.root_causes]
            pm = pm.model_copy(update={"root_causes": causes})
        else:  # the original: as the first revision had it
            pm = self.store.get_postmortem(pm.id, revision=1).postmortem
        self.store.save([pm], "bench-write")
