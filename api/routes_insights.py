"""Learning across incidents: `GET /v1/insights` (JSON) and `GET /v1/insights.csv` (one table
of it as CSV). Every measure's definition comes with the report (`definitions`)."""

from __future__ import annotations

import csv
import io
from datetime import date
from enum import StrEnum
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.routes_incidents import services_of
from rca.domain import Severity
from rca.formats.action_export import safe_cell
from rca.insights.measures import report
from rca.insights.report import InsightsReport, Times
from rca.store.keys import Principal, Role

router = APIRouter(prefix="/v1", tags=["insights"])
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]
Services = Annotated[list[str] | None, Query(max_length=20)]
Severities = Annotated[list[Severity] | None, Query(max_length=5)]


class Table(StrEnum):
    """The tables of the report a CSV can hold."""

    months = "months"
    services = "services"
    severities = "severities"
    failure_modes = "failure_modes"
    factor_categories = "factor_categories"
    chain_services = "chain_services"
    recurrence_services = "recurrence_services"
    recurrence_failure_modes = "recurrence_failure_modes"
    recurrences = "recurrences"


async def _report(
    request: Request,
    since: date | None,
    until: date | None,
    service: list[str] | None,
    severity: list[Severity] | None,
) -> InsightsReport:
    store = services_of(request).store
    # One report at a time per process, the others waiting on the event loop (not in request
    # threads): each builds arrays as long as the incidents, and 8 at once at 100,000
    # incidents raised a server process's peak memory by ~110 MB for no more throughput.
    turn: anyio.Lock | None = getattr(request.app.state, "insights_turn", None)
    if turn is None:
        turn = request.app.state.insights_turn = anyio.Lock()
    async with turn:
        return await run_in_threadpool(report, store, since, until, service or [], severity or [])


@router.get("/insights", response_model=InsightsReport)
async def insights(
    request: Request,
    _principal: Engineer,
    since: date | None = None,
    until: date | None = None,
    service: Services = None,
    severity: Severities = None,
) -> InsightsReport:
    """Incidents by month and severity; time to detect, mitigate and resolve (median, p90) by
    month, service and severity; failure modes, factor categories and services in the causal
    chain of the postmortems; recurrences (confirmed repeats of earlier postmortems, overall,
    by service and by failure mode, and the list). `since` inclusive, `until` exclusive; at
    most ten years; by default the last five. An unknown service gives an empty report, not
    an error."""
    return await _report(request, since, until, service, severity)


def _time_columns(times: Times) -> list[object]:
    return [
        times.incidents,
        times.detect.median_s,
        times.detect.p90_s,
        times.detect.missing,
        times.mitigate.median_s,
        times.mitigate.p90_s,
        times.mitigate.missing,
        times.resolve.median_s,
        times.resolve.p90_s,
        times.resolve.missing,
    ]


TIME_HEADER = [
    "incidents",
    "detect_median_s",
    "detect_p90_s",
    "detect_missing",
    "mitigate_median_s",
    "mitigate_p90_s",
    "mitigate_missing",
    "resolve_median_s",
    "resolve_p90_s",
    "resolve_missing",
]


RECURRENCE_HEADER = [
    "postmortem_id",
    "date",
    "title",
    "past_postmortem_id",
    "past_date",
    "past_title",
    "state",
    "flagged",
    "open_actions",
]


def to_csv(found: InsightsReport, table: Table) -> str:
    """One table of the report as CSV, with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if table is Table.months:
        severities = [s.value for s in Severity]
        writer.writerow(["month", *severities, *TIME_HEADER])
        for month in found.months:
            counts = [month.by_severity.get(s, 0) for s in severities]
            writer.writerow([month.month, *counts, *_time_columns(month.times)])
    elif table in (Table.services, Table.severities):
        rows = found.by_service if table is Table.services else found.by_severity_times
        writer.writerow([table.value[:-1], *TIME_HEADER])
        for row in rows:
            writer.writerow([safe_cell(row.key), *_time_columns(row.times)])
    elif table in (Table.recurrence_services, Table.recurrence_failure_modes):
        recurring = found.recurrences
        rates = (
            recurring.by_service
            if table is Table.recurrence_services
            else recurring.by_failure_mode
        )
        writer.writerow(["key", "name", "postmortems", "recurrences", "rate"])
        for rate in rates:
            cells = [safe_cell(rate.key), safe_cell(rate.name), rate.postmortems]
            writer.writerow([*cells, rate.recurrences, round(rate.rate, 4)])
    elif table is Table.recurrences:
        writer.writerow(RECURRENCE_HEADER)
        for item in found.recurrences.items:
            writer.writerow(
                [
                    safe_cell(item.postmortem_id),
                    item.postmortem_date,
                    safe_cell(item.title),
                    safe_cell(item.past_postmortem_id),
                    item.past_postmortem_date,
                    safe_cell(item.past_title),
                    item.state,
                    item.flagged,
                    len(item.open_actions),
                ]
            )
    else:
        counts = getattr(found, table.value)
        writer.writerow(["key", "name", "postmortems"])
        for count in counts:
            writer.writerow([safe_cell(count.key), safe_cell(count.name), count.postmortems])
    return out.getvalue()


@router.get("/insights.csv", response_class=Response)
async def insights_csv(
    request: Request,
    _principal: Engineer,
    table: Table = Table.months,
    since: date | None = None,
    until: date | None = None,
    service: Services = None,
    severity: Severities = None,
) -> Response:
    """One table of the insights as CSV (`table`: months, services, severities, failure_modes,
    factor_categories, chain_services, recurrence_services, recurrence_failure_modes,
    recurrences). Text cells that a spreadsheet would run as a formula are quoted."""
    found = await _report(request, since, until, service, severity)
    return Response(
        to_csv(found, table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rca-insights-{table.value}.csv"'},
    )
