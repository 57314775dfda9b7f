"""The Insights page: learning across incidents over a date range, service and severity.

Summary tiles (incidents, postmortems, median times and what they leave out), the charts of
`api.web.diagrams.charts` drawn on the server, the times by severity and service, and each
table as CSV for the signed-in session (`/ui/insights.csv`, the same CSV as `/v1/insights.csv`,
which needs an API key). A range that is reversed or over ten years is a 400 error page; an
unknown service is an empty report, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.routes_insights import Table, to_csv
from api.web import views
from api.web.diagrams.charts import (
    CATEGORY_FILL,
    NO_INCIDENTS,
    NO_POSTMORTEMS,
    Bar,
    hbars_svg,
    severity_bars_svg,
    time_trends_svg,
)
from api.web.diagrams.timeline import format_duration
from api.web.pages.base import Viewer, render, services_of
from rca.domain import Severity
from rca.errors import InvalidArgument
from rca.insights.measures import report
from rca.insights.report import GroupRow, InsightsReport, Spread

router = APIRouter(prefix="/ui", include_in_schema=False)
DateText = Annotated[str | None, Query(max_length=10)]
"""A date as an `<input type=date>` sends it: `YYYY-MM-DD`, or empty for the default."""
ServiceQuery = Annotated[list[str] | None, Query(max_length=20)]
SeverityQuery = Annotated[list[Severity] | None, Query(max_length=5)]
NO_RECURRENCES = "No confirmed recurrences in this range"
MISSING = {"detect": "detection", "mitigate": "mitigation", "resolve": "resolution"}
"""What an incident lacks when it is left out of a time measure."""


@dataclass(frozen=True)
class Filters:
    """What the page's form asks for (None: the report's default)."""

    since: date | None
    until: date | None
    services: list[str]
    severities: list[Severity]


def _date(name: str, value: str | None) -> date | None:
    if not value or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgument(f"`{name}` must be a date (YYYY-MM-DD)") from None


def filters(
    since: DateText = None,
    until: DateText = None,
    service: ServiceQuery = None,
    severity: SeverityQuery = None,
) -> Filters:
    """The form's fields: blank dates and services are left out."""
    services = list(dict.fromkeys(s.strip()[:100] for s in service or [] if s.strip()))
    return Filters(_date("since", since), _date("until", until), services, severity or [])


Chosen = Annotated[Filters, Depends(filters)]


def _report(request: Request, chosen: Filters) -> InsightsReport:
    store = services_of(request).store
    return report(store, chosen.since, chosen.until, chosen.services, chosen.severities)


def duration(seconds: float | None) -> str:
    """A measured time as the page shows it; a dash without data."""
    return "—" if seconds is None else format_duration(timedelta(seconds=round(seconds)))


@dataclass(frozen=True)
class Tile:
    """One of the time tiles: a median, its p90, and how many incidents it leaves out."""

    key: str
    label: str
    median: str
    p90: str
    missing: str | None


def _missing(count: int, what: str) -> str | None:
    if not count:
        return None
    return f"{count} incident{' has' if count == 1 else 's have'} no {what} time"


def time_tiles(found: InsightsReport) -> list[Tile]:
    """Median, p90 and missing count of the time to detect, mitigate and resolve."""
    tiles = []
    for key, what in MISSING.items():
        spread: Spread = getattr(found.times, key)
        tiles.append(
            Tile(
                key=key,
                label=f"Median time to {key}",
                median=duration(spread.median_s),
                p90=duration(spread.p90_s),
                missing=_missing(spread.missing, what),
            )
        )
    return tiles


@dataclass(frozen=True)
class TimesRow:
    """One row of the times tables: a severity or a service, medians and p90s in words."""

    key: str
    incidents: int
    cells: list[tuple[str, str]]
    """(median, p90) of detect, mitigate, resolve."""


def times_rows(rows: list[GroupRow]) -> list[TimesRow]:
    out = []
    for row in rows:
        spreads: list[Spread] = [row.times.detect, row.times.mitigate, row.times.resolve]
        cells = [
            (duration(s.median_s), "" if s.p90_s is None else duration(s.p90_s)) for s in spreads
        ]
        out.append(TimesRow(row.key or "(none)", row.times.incidents, cells))
    return out


def csv_links(found: InsightsReport) -> dict[str, str]:
    """The `/ui/insights.csv` address of each table, for the report's range and filters."""
    query: list[tuple[str, str]] = [
        ("since", found.range.since.isoformat()),
        ("until", found.range.until.isoformat()),
        *(("service", s) for s in found.range.services),
        *(("severity", s) for s in found.range.severities),
    ]
    return {t.value: "/ui/insights.csv?" + urlencode([("table", t.value), *query]) for t in Table}


def charts(found: InsightsReport) -> dict[str, str]:
    """Every chart of the page, as inline SVG."""
    incidents = [Bar(g.key, g.key or "(none)", g.times.incidents) for g in found.by_service]
    recurring = found.recurrences
    return {
        "times": time_trends_svg(found.months),
        "severities": severity_bars_svg(found.months),
        "failure_modes": hbars_svg(
            "Failure modes",
            [Bar(c.key, c.name, c.postmortems) for c in found.failure_modes],
            unit="postmortems",
            empty=NO_POSTMORTEMS,
            colour="#b42318",
        ),
        "services": hbars_svg(
            "Incidents per service",
            incidents,
            unit="incidents",
            empty=NO_INCIDENTS,
            colour="#026aa2",
        ),
        "chain_services": hbars_svg(
            "Services in the causal chain",
            [Bar(c.key, c.name, c.postmortems) for c in found.chain_services],
            unit="postmortems",
            empty=NO_POSTMORTEMS,
            colour="#6941c6",
        ),
        "factor_categories": hbars_svg(
            "Contributing-factor categories",
            [Bar(c.key, c.name.title(), c.postmortems) for c in found.factor_categories],
            unit="postmortems",
            empty=NO_POSTMORTEMS,
            colours=CATEGORY_FILL,
        ),
        **{
            name: hbars_svg(
                f"Recurrences by {what}",
                [Bar(r.key, r.name, r.recurrences) for r in rates if r.recurrences],
                unit="recurrences",
                empty=NO_RECURRENCES,
                colour=colour,
            )
            for name, what, rates, colour in (
                ("recurrence_modes", "failure mode", recurring.by_failure_mode, "#b42318"),
                ("recurrence_services", "service", recurring.by_service, "#026aa2"),
            )
        },
    }


def page_context(found: InsightsReport, chosen: Filters) -> dict[str, Any]:
    """What the template shows of a report."""
    known = sorted({g.key for g in found.by_service if g.key} | set(chosen.services))
    return {
        "report": found,
        "charts": charts(found),
        "tiles": time_tiles(found),
        "csv": csv_links(found),
        "by_severity": times_rows(found.by_severity_times),
        "by_service": times_rows(found.by_service),
        "known_services": known,
        "service": chosen.services[0] if chosen.services else "",
        "severities": list(Severity),
        "chosen": {s.value for s in chosen.severities},
        "severity_counts": [(s, n) for s, n in found.by_severity.items() if n],
        "overdue": None,  # filled by the page from the store (see `insights_page`)
        "overdue_total": 0,
        "recurrences": found.recurrences,
    }


@router.get("/insights", response_class=HTMLResponse)
def insights_page(request: Request, session: Viewer, chosen: Chosen) -> HTMLResponse:
    """The Insights page for the chosen range (by default the last five years)."""
    found = _report(request, chosen)
    context = page_context(found, chosen)
    services = services_of(request)
    today = datetime.now(UTC).date()
    context["overdue"] = views.shown_actions(services, services.store.overdue_actions(today, 15))
    context["overdue_total"] = services.store.overdue_count(today)
    redactor = views.redactor_of(services)
    context["recurrence_items"] = [
        item.model_copy(
            update={
                "title": redactor.redact(item.title),
                "past_title": redactor.redact(item.past_title),
                "open_actions": [redactor.redact(a) for a in item.open_actions],
            }
        )
        for item in found.recurrences.items
    ]
    return render(request, "insights.html", session, **context)


@router.get("/insights.csv", response_class=Response)
def insights_csv(
    request: Request, _session: Viewer, chosen: Chosen, table: Table = Table.months
) -> Response:
    """One table of the page as CSV, for the signed-in session."""
    found = _report(request, chosen)
    return Response(
        to_csv(found, table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rca-insights-{table.value}.csv"'},
    )
