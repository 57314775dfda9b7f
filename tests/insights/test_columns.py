"""The insights' fast path against a plain reference: the columns kept in memory follow every
incident write (saves, changes, new services and severities, rows removed by hand), the
postmortem counts equal the SQL ones, and a report leaves stale postmortems to the workers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from rca.config import Settings
from rca.domain import Incident, Postmortem, Severity
from rca.domain.additions import IncidentChange
from rca.insights import facts
from rca.insights.measures import median, months_between, percentile, report
from rca.store import Store
from rca.store import incident_facts as columns_module
from rca.store.engine import incidents, write_transaction
from rca.store.incident_facts import incident_columns
from rca.store.insight_tables import incident_facts, incident_services
from rca.store.integration_tables import incident_revisions
from rca.store.postmortem_columns import count_facts, postmortem_columns
from rca.store.postmortem_facts import fact_counts
from tests.factories import incident_data, postmortem_data

SINCE, UNTIL = date(2024, 1, 1), date(2026, 1, 1)
SERVICES = ["checkout", "db", "edge", "auth", "search"]
SEVERITIES = [s.value for s in Severity]


def random_incident(rng: random.Random, n: int) -> Incident:
    start = datetime(2023, 12, 25, tzinfo=UTC) + timedelta(minutes=rng.randrange(1_100_000))

    offsets = sorted(rng.choice((0, 60, 61, 300, 3600, 90_000)) for _ in range(3))

    def after(chance: float, offset: int) -> str | None:
        return (start + timedelta(seconds=offset)).isoformat() if rng.random() < chance else None

    return Incident.model_validate(
        incident_data(
            id=f"inc-{n:04d}",
            started_at=start.isoformat(),
            detected_at=after(0.8, offsets[0]),
            mitigated_at=after(0.7, offsets[1]),
            resolved_at=after(0.9, offsets[2]),
            severity=rng.choice(SEVERITIES),
            services=rng.sample(SERVICES, rng.randrange(0, 3)),
        )
    )


def spread_of(values: list[int | None]) -> dict[str, Any]:
    known = sorted(v for v in values if v is not None)
    return {
        "count": len(known),
        "missing": len(values) - len(known),
        "median_s": median(known),
        "p90_s": percentile(known, 0.9),
    }


def times_of(chosen: list[Incident]) -> dict[str, Any]:
    def seconds(span: timedelta | None) -> int | None:
        return None if span is None else int(span.total_seconds())

    return {
        "incidents": len(chosen),
        "detect": spread_of([seconds(i.time_to_detect) for i in chosen]),
        "mitigate": spread_of([seconds(i.time_to_mitigate) for i in chosen]),
        "resolve": spread_of([seconds(i.time_to_resolve) for i in chosen]),
    }


def reference(
    stored: dict[str, Incident], services: list[str], severities: list[Severity]
) -> dict[str, Any]:
    """The incident measures, computed the plain way from the incidents themselves."""
    chosen = [
        i
        for i in stored.values()
        if SINCE <= i.started_at.astimezone(UTC).date() < UNTIL
        and (not severities or i.severity in severities)
        and (not services or set(i.services) & set(services))
    ]
    month = {i.id: i.started_at.astimezone(UTC).strftime("%Y-%m") for i in chosen}
    by_service: dict[str, list[Incident]] = {}
    for i in chosen:
        for s in dict.fromkeys(i.services):
            if not services or s in services:
                by_service.setdefault(s, []).append(i)
    return {
        "incidents": len(chosen),
        "by_severity": {s: sum(i.severity.value == s for i in chosen) for s in SEVERITIES},
        "times": times_of(chosen),
        "months": [
            {
                "month": m,
                "by_severity": {
                    s: sum(month[i.id] == m and i.severity.value == s for i in chosen)
                    for s in SEVERITIES
                },
                "times": times_of([i for i in chosen if month[i.id] == m]),
            }
            for m in months_between(SINCE, UNTIL)
        ],
        "by_service": [
            {"key": k, "times": times_of(v)}
            for k, v in sorted(by_service.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        ],
        "by_severity_times": [
            {"key": s, "times": times_of([i for i in chosen if i.severity.value == s])}
            for s in SEVERITIES
            if any(i.severity.value == s for i in chosen)
        ],
    }


FILTERS: list[tuple[list[str], list[Severity]]] = [
    ([], []),
    (["db"], []),
    (["checkout", "edge"], [Severity.SEV2, Severity.SEV3]),
    ([], [Severity.SEV1]),
    (["no-such"], []),
]


def check(store: Store, stored: dict[str, Incident]) -> None:
    for services, severities in FILTERS:
        found = report(store, SINCE, UNTIL, services, severities).model_dump()
        expected = reference(stored, services, severities)
        assert {k: found[k] for k in expected} == expected, (services, severities)


@contextmanager
def stored_on(
    backend: str, settings: Settings, rng: random.Random, count: int
) -> Iterator[tuple[Store, dict[str, Incident]]]:
    """A store on `backend` holding `count` random incidents, checked against the reference."""
    store = Store.open(settings)
    try:
        assert store.engine.dialect.name == backend
        stored = {i.id: i for i in (random_incident(rng, n) for n in range(count))}
        store.save(list(stored.values()), "test")
        check(store, stored)
        yield store, stored
    finally:
        store.close()


def test_the_report_follows_every_kind_of_incident_write(store: Store) -> None:
    rng = random.Random(19)
    stored = {i.id: i for i in (random_incident(rng, n) for n in range(300))}
    store.save(list(stored.values()), "test")
    check(store, stored)  # built from scratch
    for round_no in range(4):
        batch = []
        for ident in rng.sample(sorted(stored), 15):
            changed = random_incident(rng, int(ident[4:]))
            update: dict[str, Any] = {"severity": changed.severity, "services": changed.services}
            if round_no % 2:
                update = {"started_at": changed.started_at, "detected_at": changed.detected_at}
                update |= {"mitigated_at": None, "resolved_at": changed.resolved_at}
            batch.append(stored[ident].model_copy(update=update))
        new = [random_incident(rng, 1000 + 10 * round_no + k) for k in range(5)]
        odd = new[0].model_copy(update={"services": [f"new-service-{round_no}"]})
        batch += [odd, *new[1:]]
        store.save(batch, "test")
        stored.update({i.id: Incident.model_validate(i.model_dump()) for i in batch})
        check(store, stored)  # caught up from the revisions
    kept = incident_columns(store.engine)
    assert incident_columns(store.engine) is kept  # nothing written: the same columns


def test_columns_read_a_few_rows_at_a_time_are_the_same_on_both_back_ends(
    backend: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(columns_module, "_BATCH", 7)  # every read crosses batch boundaries
    monkeypatch.setattr(columns_module, "CATCH_UP_LIMIT", 3)  # each change reads all again
    rng = random.Random(29)
    with stored_on(backend, settings, rng, 120) as (store, stored):
        update = {"services": ["late-service"], "severity": Severity.SEV1}
        changed = [stored[i].model_copy(update=update) for i in rng.sample(sorted(stored), 6)]
        batch = changed + [random_incident(rng, 2000 + k) for k in range(9)]
        store.save(batch, "test")
        stored.update({i.id: Incident.model_validate(i.model_dump()) for i in batch})
        check(store, stored)


def test_a_change_through_the_api_path_is_seen(store: Store) -> None:
    rng = random.Random(5)
    stored = {i.id: i for i in (random_incident(rng, n) for n in range(40))}
    store.save(list(stored.values()), "test")
    check(store, stored)
    target = next(i for i in stored.values() if i.severity is not Severity.SEV1)
    change = IncidentChange(services=["brand-new"], severity_at_least=Severity.SEV1)
    result = store.change_incident(target.id, change, "tester", "test")
    stored[target.id] = result.incident
    check(store, stored)


def test_rows_removed_by_hand_rebuild_the_columns(store: Store) -> None:
    rng = random.Random(7)
    stored = {i.id: i for i in (random_incident(rng, n) for n in range(60))}
    store.save(list(stored.values()), "test")
    check(store, stored)
    gone = sorted(stored)[:3]
    with write_transaction(store.engine) as conn:
        for table in (incident_services, incident_facts, incident_revisions):
            conn.execute(delete(table).where(table.c.incident_id.in_(gone)))
        conn.execute(delete(incidents).where(incidents.c.id.in_(gone)))
    for ident in gone:
        del stored[ident]
    check(store, stored)


def test_postmortem_counts_equal_the_sql_ones(store: Store) -> None:
    rng = random.Random(3)
    causes = [
        "The TLS certificate of checkout expired",
        "Retries without backoff amplified the load on db",
        "Disk full on the db primary",
        "Ownership of edge was unclear",
    ]
    pms = [
        Postmortem.model_validate(
            postmortem_data(
                id=f"pm-{n:03d}",
                date=None if n % 13 == 0 else f"2025-{rng.randrange(1, 13):02d}-10",
                severity=rng.choice([*SEVERITIES, None]),
                services=rng.sample(SERVICES, rng.randrange(1, 3)),
                root_causes=rng.sample(causes, 2),
            )
        )
        for n in range(60)
    ]
    store.save(pms, "test")
    facts.refresh(store)
    kinds = ["failure_mode", "factor_category", "chain_service", "service"]
    columns = postmortem_columns(store.engine)
    for services, severities in FILTERS:
        for since, until in [(SINCE, UNTIL), (date(2025, 3, 1), date(2025, 7, 1))]:
            args = (kinds, since, until, services, severities)
            assert count_facts(columns, *args) == fact_counts(store.engine, *args)


def test_a_report_finds_few_stale_facts_itself_and_the_rest_later(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts, "REQUEST_LIMIT", 2)
    pms = [
        Postmortem.model_validate(postmortem_data(id=f"pm-{n}", date="2025-03-10"))
        for n in range(5)
    ]
    store.save(pms, "test")
    assert facts.catch_up(store) == 3  # two found, three left for the workers
    assert report(store, SINCE, UNTIL).postmortems == 5  # counted; their facts are not all in
    assert facts.catch_up(store, limit=10) == 0
    assert facts.catch_up(store) == 0


def test_the_columns_are_kept_until_an_incident_is_written_on_both_back_ends(
    backend: str, settings: Settings
) -> None:
    rng = random.Random(23)
    with stored_on(backend, settings, rng, 50) as (store, stored):
        kept = incident_columns(store.engine)
        assert incident_columns(store.engine) is kept  # nothing written: not read again
        target = next(iter(stored.values()))
        change = IncidentChange(services=["brand-new"])
        stored[target.id] = store.change_incident(target.id, change, "tester", "test").incident
        assert incident_columns(store.engine) is not kept
        check(store, stored)
        added = random_incident(rng, 500)
        store.save([added], "test")
        stored[added.id] = added
        check(store, stored)
