"""The insights measures: exact values on a small known history, missing times, filters, bad
ranges, CSV, and the examples' real numbers."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rca.domain import Incident, Postmortem, Severity
from rca.errors import InvalidArgument
from rca.insights import facts
from rca.insights.measures import median, months_between, percentile, report
from rca.store import Store
from tests.api.support import Api, running_api
from tests.factories import incident_data, postmortem_data

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def incident(ident: str, start: datetime, ttd: int | None, ttr: int | None, **kw: Any) -> Incident:
    data = incident_data(
        id=ident,
        started_at=start.isoformat(),
        detected_at=(start + timedelta(minutes=ttd)).isoformat() if ttd is not None else None,
        mitigated_at=(start + timedelta(minutes=ttr)).isoformat() if ttr is not None else None,
        resolved_at=(start + timedelta(minutes=ttr)).isoformat() if ttr is not None else None,
        **kw,
    )
    return Incident.model_validate(data)


@pytest.fixture
def history(store: Store) -> Store:
    store.save(
        [
            incident("inc-a", T0, 5, 60, severity="SEV1", services=["checkout"]),
            incident(
                "inc-b",
                T0 + timedelta(days=1),
                15,
                120,
                severity="SEV2",
                services=["checkout", "db"],
            ),
            incident("inc-c", T0 + timedelta(days=2), None, 30, severity="SEV2", services=["db"]),
            incident(
                "inc-d", T0 + timedelta(days=40), 30, None, severity="SEV3", services=["edge"]
            ),
        ],
        "test",
    )
    return store


def test_times_counts_and_missing_values_are_exact(history: Store) -> None:
    found = report(history, date(2025, 1, 1), date(2025, 7, 1))
    assert found.incidents == 4
    assert found.by_severity == {"SEV1": 1, "SEV2": 2, "SEV3": 1, "SEV4": 0, "SEV5": 0}
    assert found.times.detect.model_dump() == {
        "count": 3,
        "missing": 1,
        "median_s": 900.0,
        "p90_s": 1800.0,
    }
    assert found.times.resolve.model_dump() == {
        "count": 3,
        "missing": 1,
        "median_s": 3600.0,
        "p90_s": 7200.0,
    }
    assert [m.month for m in found.months] == [
        "2025-01",
        "2025-02",
        "2025-03",
        "2025-04",
        "2025-05",
        "2025-06",
    ]
    march = next(m for m in found.months if m.month == "2025-03")
    assert march.times.incidents == 3 and march.by_severity["SEV2"] == 2
    assert next(m for m in found.months if m.month == "2025-02").times.incidents == 0
    services = {row.key: row.times.incidents for row in found.by_service}
    assert services == {"checkout": 2, "db": 2, "edge": 1}  # inc-b counts for both
    only_db = report(history, date(2025, 1, 1), date(2025, 7, 1), services=["db"])
    assert only_db.incidents == 2 and only_db.times.detect.missing == 1
    sev2 = report(history, date(2025, 1, 1), date(2025, 7, 1), severities=[Severity.SEV2])
    assert sev2.incidents == 2


def test_empty_ranges_unknown_services_and_bad_ranges(history: Store) -> None:
    nothing = report(history, date(2020, 1, 1), date(2020, 3, 1))
    assert nothing.empty and nothing.incidents == 0 and len(nothing.months) == 2
    assert nothing.times.detect.median_s is None
    unknown = report(history, date(2025, 1, 1), date(2025, 7, 1), services=["no-such"])
    assert unknown.empty and unknown.by_service == []
    with pytest.raises(InvalidArgument, match="at most 10 years"):
        report(history, date(2010, 1, 1), date(2025, 1, 1))
    with pytest.raises(InvalidArgument, match="after"):
        report(history, date(2025, 1, 1), date(2025, 1, 1))
    default = report(history, today=date(2026, 12, 6))
    assert default.range.since == date(2022, 1, 1) and default.range.until == date(2027, 1, 1)


def test_percentiles_and_months() -> None:
    assert median([1, 2, 3, 4]) == 2.5 and median([]) is None
    assert percentile(list(range(1, 11)), 0.9) == 9.0 and percentile([7], 0.9) == 7.0
    assert months_between(date(2024, 11, 15), date(2025, 2, 1)) == ["2024-11", "2024-12", "2025-01"]


def test_postmortem_facts_follow_revisions_and_skip_undated(store: Store) -> None:
    pm = Postmortem.model_validate(
        postmortem_data(
            id="pm-cert",
            date="2025-03-10",
            services=["checkout"],
            root_causes=["The TLS certificate of checkout expired; renewal was manual"],
        )
    )
    undated = Postmortem.model_validate(postmortem_data(id="pm-undated", date=None))
    store.save([pm, undated], "test")
    found = report(store, date(2025, 1, 1), date(2025, 7, 1))
    assert found.postmortems == 1 and found.undated_postmortems == 1
    assert "expiry" in [c.key for c in found.failure_modes]
    revised = pm.model_copy(update={"root_causes": ["Retries without backoff amplified load"]})
    store.save([revised], "test")
    again = report(store, date(2025, 1, 1), date(2025, 7, 1))
    assert "expiry" not in [c.key for c in again.failure_modes]
    assert "retry-storm" in [c.key for c in again.failure_modes]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from running_api(tmp_path)


def test_the_api_answers_json_and_csv_and_refuses_bad_input(api: Api) -> None:
    api.services.store.save([incident("inc-a", T0, 5, 60, services=["checkout"])], "t")
    body = api.get("/v1/insights", params={"since": "2025-01-01", "until": "2025-07-01"}).json()
    assert body["incidents"] == 1 and "time_to_detect" in body["definitions"]
    table = api.get(
        "/v1/insights.csv", params={"since": "2025-01-01", "until": "2025-07-01", "table": "months"}
    )
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(table.text)))
    assert rows[0][0] == "month" and len(rows) == 7
    march = next(r for r in rows if r[0] == "2025-03")
    assert march[rows[0].index("detect_median_s")] == "300.0"
    for params, status in [
        ({"since": "2010-01-01", "until": "2025-01-01"}, 400),
        ({"since": "2025-02-01", "until": "2025-01-01"}, 400),
        ({"since": "yesterday"}, 422),
        ({"severity": "SEV9"}, 422),
        ({"table": "secrets"}, 422),
    ]:
        path = "/v1/insights.csv" if "table" in params else "/v1/insights"
        answer = api.get(path, params=params)
        assert answer.status_code == status, (params, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    assert api.get("/v1/insights", params={"service": "nope"}).json()["empty"] is True
    assert api.get("/v1/insights", role=None).status_code == 401


def test_a_report_finds_a_bounded_number_of_stale_facts_and_says_how_many_are_left(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts, "REQUEST_LIMIT", 3)
    cause = "The TLS certificate expired because renewal was manual."
    store.save(
        [
            Postmortem.model_validate(
                postmortem_data(id=f"pm-{n}", date="2025-03-01", root_causes=[cause])
            )
            for n in range(5)
        ],
        "test",
    )
    first = report(store, date(2025, 1, 1), date(2026, 1, 1))
    assert (first.postmortems, first.stale_postmortems) == (5, 2)
    assert first.failure_modes[0].postmortems == 3  # the two left out are not counted yet
    assert "stale" in first.definitions
    second = report(store, date(2025, 1, 1), date(2026, 1, 1))
    assert (second.stale_postmortems, second.failure_modes[0].postmortems) == (0, 5)


def test_extreme_dates_give_a_report_or_a_clear_error_never_a_crash(store: Store) -> None:
    early = report(store, until=date(3, 1, 1))  # the default five years back stop at year 1
    assert early.range.since == date(1, 1, 1) and early.empty
    late = report(store, since=date(9998, 1, 1), until=date(9999, 12, 31))
    assert late.empty and len(late.months) == 24
    with pytest.raises(InvalidArgument):
        report(store, since=date(9999, 1, 1))  # until defaults to this month: before since


def test_one_report_is_computed_at_a_time_and_the_others_wait_their_turn(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api import routes_insights

    running, most = [0], [0]
    guard = threading.Lock()

    def slow_report(*args: Any) -> Any:
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with guard:
            running[0] -= 1
        return report(*args)

    monkeypatch.setattr(routes_insights, "report", slow_report)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: api.get("/v1/insights"), range(4)))
        healthz = api.get("/healthz")  # meanwhile, other requests are answered
    assert [a.status_code for a in answers] == [200] * 4 and healthz.status_code == 200
    assert most[0] == 1
