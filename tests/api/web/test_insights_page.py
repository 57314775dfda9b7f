"""The Insights page in a real headless Chromium over the example history (54 past incidents,
the six example incidents and 31 postmortems): the tiles and charts show the report's numbers,
an empty range and an unknown service show the empty state, a range over ten years is a 400,
and each table downloads as CSV. The charts alone: gaps, escaping, the empty message.

The screenshot goes to test-artifacts/screenshots/insights.png.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from api.services import Services
from api.web.diagrams.charts import (
    NO_INCIDENTS,
    Bar,
    hbars_svg,
    severity_bars_svg,
    short_duration,
    time_trends_svg,
)
from api.web.pages.insights import duration
from rca.domain import ActionStatus
from rca.formats.importer import import_paths
from rca.insights.measures import report
from rca.insights.report import InsightsReport, MonthRow, Spread, Times
from rca.store.action_updates import set_due_date
from rca.store.keys import Role
from rca.store.recurrences import recurrences_of
from tests.api.module_backend import (  # fixtures: pytest finds them in the module
    PER_MODULE,
    ModuleBackend,
    module_backend_fixture,  # noqa: F401
)
from tests.api.support import api_settings, served

# The module's server is built once per back end (`module_backend`), not once per test.
pytestmark = PER_MODULE

ROOT = Path(__file__).parents[3]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SINCE, UNTIL = date(2022, 1, 1), date(2026, 7, 1)
RANGE = f"since={SINCE}&until={UNTIL}"

playwright_api = pytest.importorskip("playwright.sync_api")
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test installs it)"
)


@dataclass
class Site:
    url: str
    keys: dict[Role, str]
    report: InsightsReport
    """The report over `SINCE`..`UNTIL`, computed directly from the store."""
    overdue: int
    """How many action items are overdue today, from the store."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, module_backend: ModuleBackend) -> Iterator[Site]:
    app = create_app(api_settings(tmp_path_factory.mktemp("insights")), workers=0)
    with served(app) as url:
        services: Services = app.state.services
        module_backend.holds(services.store.engine)
        for folder in ("postmortems", "incidents", "history"):
            imported = import_paths(services.store, [ROOT / "examples" / folder], 1_000_000)
            assert imported.problems == [], imported.problems
        keys = {role: services.keys.create(f"{role.value} user", role)[0] for role in Role}
        # Imported items' default due dates count from their postmortems' dates (2022 to
        # 2025), so the open ones are overdue; a reviewer dated two before all of them.
        for row in services.store.action_item_page(2, None, [ActionStatus.OPEN]):
            set_due_date(
                services.store.engine,
                row.postmortem_id,
                row.key,
                date(2022, 1, 31),
                "reviewer",
                actions=services.store.actions,
            )
        overdue = services.store.overdue_count(datetime.now(UTC).date())
        # Recurrences as `make run` proposes them over the history, two confirmed by a reviewer.
        services.retrieval.indexer.sync()
        for pm in services.store.list_postmortems():
            services.propose_recurrences(pm.id)
        proposed = [
            link
            for pm in services.store.list_postmortems()
            for link in recurrences_of(services.store.engine, pm.id)
            if link.postmortem_id == pm.id
        ]
        assert len(proposed) >= 10
        first = {link.postmortem_id: link for link in reversed(proposed)}  # one each
        for link in list(first.values())[:2]:
            services.decide_recurrence(link.postmortem_id, link.past_postmortem_id, True, "rev")
        yield Site(url, keys, report(services.store, SINCE, UNTIL), overdue)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    """An engineer's page (the least role that reads insights), 1360 px wide."""
    page = _signed_in(browser, site, Role.ENGINEER)
    yield page
    page.context.close()


@needs_chromium
def test_the_page_shows_the_reports_numbers_in_tiles_and_charts(page: Any, site: Site) -> None:
    found = site.report
    assert found.incidents >= 54 and found.postmortems >= 24  # the examples, not a thin sample
    page.click("nav >> text=Insights")
    page.wait_for_url("**/ui/insights")
    page.fill("input[name=since]", SINCE.isoformat())
    page.fill("input[name=until]", UNTIL.isoformat())
    page.click("form.insights-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/insights\?since=2022-01-01&until=2026-07-01.*"))
    assert page.locator("#empty-state").count() == 0

    tile = page.locator("#tile-incidents .tile-value")
    assert tile.inner_text() == str(found.incidents)
    assert page.locator("#tile-postmortems .tile-value").inner_text() == str(found.postmortems)
    assert page.locator("#tile-detect .tile-value").inner_text() == duration(
        found.times.detect.median_s
    )
    missing = found.times.detect.missing
    assert missing  # two example incidents have no detection time
    assert f"{missing} incidents have no detection time" in page.inner_text("#tile-detect")
    assert f"{found.times.resolve.missing} incidents have no resolution time" in (
        page.inner_text("#tile-resolve")
    )

    # A dot per month with a median time, a bar per month with incidents.
    with_detect = sum(1 for m in found.months if m.times.detect.median_s is not None)
    dots = page.locator("#chart-times circle.point")
    assert dots.count() == sum(
        1
        for m in found.months
        for s in (m.times.detect, m.times.mitigate, m.times.resolve)
        if s.median_s is not None
    )
    assert with_detect > 24
    busy = [m for m in found.months if sum(m.by_severity.values())]
    assert page.locator("#chart-severities g.bar").count() == len(busy)
    assert found.failure_modes[0].key == "expiry"  # the most frequent mode in the examples
    modes = page.locator("#chart-failure-modes svg")
    assert "expiry" in modes.text_content()
    assert modes.locator("g.bar[data-key=expiry] text.value").text_content() == str(
        found.failure_modes[0].postmortems
    )
    top = found.by_service[0]
    services = page.locator("#chart-services svg")
    assert services.locator(f"g.bar[data-key='{top.key}'] text.value").text_content() == str(
        top.times.incidents
    )
    assert page.locator("#chart-chain-services g.bar").count() == min(12, len(found.chain_services))
    assert page.locator("#chart-factor-categories g.bar").count() == len(found.factor_categories)
    assert page.locator("#times-by-severity tbody tr").count() == len(found.by_severity_times)
    overdue = site.overdue
    assert overdue > 15  # the examples' open items are long past their default due dates
    assert f"({overdue})" in page.inner_text("#overdue-actions h3")
    rows = page.locator("#overdue-actions tbody tr")
    assert rows.count() == min(15, overdue) == 15
    # The earliest due first: the two a reviewer dated.
    assert "2022-01-31" in rows.nth(1).inner_text() and "2022-01-31" not in rows.nth(2).inner_text()
    recurring = found.recurrences
    assert recurring.confirmed == 2 and recurring.proposed >= 8
    rate = page.inner_text("#recurrence-rate")
    assert f"({recurring.confirmed} of {found.postmortems})" in rate
    assert f"{recurring.proposed} proposed links awaiting a reviewer" in rate
    assert page.locator("#recurrences tbody tr").count() == len(recurring.items)
    assert page.locator("#recurrences tbody tr.confirmed").count() == 2
    flagged = page.locator("#recurrences tr.recurrence-flagged")
    assert flagged.count() == recurring.flagged
    assert page.locator("#chart-recurrence-modes g.bar").count() == sum(
        1 for r in recurring.by_failure_mode if r.recurrences
    )
    assert page.locator("#definitions dt").count() == len(found.definitions)
    assert page.locator("nav a[aria-current=page]").inner_text() == "Insights"
    page.wait_for_timeout(100)  # let the fonts settle before the picture
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "insights.png"), full_page=True)


@needs_chromium
def test_each_table_downloads_as_csv_for_the_session(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/ui/insights?{RANGE}")
    href = page.locator("#chart-failure-modes a.csv").get_attribute("href")
    assert href.startswith("/ui/insights.csv?table=failure_modes&")
    with page.expect_download() as started:
        page.click("#chart-failure-modes a.csv")
    download = started.value
    assert download.suggested_filename == "rca-insights-failure_modes.csv"
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "key,name,postmortems"
    first = site.report.failure_modes[0]
    assert lines[1] == f"{first.key},{first.name},{first.postmortems}"
    months = page.request.get(site.url + page.locator("#chart-times a.csv").get_attribute("href"))
    assert months.status == 200
    assert months.headers["content-type"].startswith("text/csv")
    assert len(months.text().splitlines()) == 1 + len(site.report.months)
    signed_out = page.context.browser.new_context().request.get(site.url + href, max_redirects=0)
    assert signed_out.status == 303  # no session: sent to sign in, no data
    assert "/ui/sign-in" in signed_out.headers["location"]


@needs_chromium
def test_an_empty_range_says_so_in_every_chart(page: Any, site: Site) -> None:
    answer = page.goto(f"{site.url}/ui/insights?since=2019-01-01&until=2020-01-01")
    assert answer.status == 200
    assert "No incidents and no postmortems" in page.inner_text("#empty-state")
    assert page.locator("#tile-incidents .tile-value").inner_text() == "0"
    assert page.locator("#chart-times .no-data").text_content() == NO_INCIDENTS
    assert page.locator("#chart-severities .no-data").text_content() == NO_INCIDENTS
    assert page.locator("#chart-failure-modes .no-data").text_content() == (
        "No postmortems in this range"
    )
    assert page.locator("circle, g.bar").count() == 0
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "insights-empty.png"), full_page=True)


@needs_chromium
def test_an_unknown_service_is_an_empty_report_not_an_error(page: Any, site: Site) -> None:
    answer = page.goto(f"{site.url}/ui/insights?{RANGE}&service=no-such-service")
    assert answer.status == 200
    assert "no-such-service" in page.inner_text("#empty-state")
    assert page.locator("input[name=service]").input_value() == "no-such-service"
    assert page.locator("#tile-incidents .tile-value").inner_text() == "0"
    hostile = "<script>alert(1)</script>"
    answer = page.goto(f"{site.url}/ui/insights?{RANGE}&service={hostile}")
    assert answer.status == 200
    assert hostile in page.inner_text("#empty-state")  # shown as text
    scripts = page.eval_on_selector_all("script", "els => els.map(e => e.src)")
    assert all(src.endswith("/ui/static/app.js") for src in scripts)


@needs_chromium
def test_a_known_service_and_severity_narrow_the_report(page: Any, site: Site) -> None:
    service = site.report.by_service[0]
    page.goto(f"{site.url}/ui/insights?{RANGE}&service={service.key}&severity=SEV1")
    shown = int(page.locator("#tile-incidents .tile-value").inner_text())
    assert 0 < shown < service.times.incidents
    assert page.locator("input[name=severity][value=SEV1]").is_checked()
    assert page.locator("input[name=severity][value=SEV2]").is_checked() is False


@needs_chromium
@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("since=2014-01-01&until=2026-01-01", "at most 10 years"),
        ("since=2026-01-01&until=2025-01-01", "`until` must be after `since`"),
        ("since=yesterday", "`since` must be a date"),
    ],
)
def test_a_bad_range_is_a_400_error_page(page: Any, site: Site, query: str, detail: str) -> None:
    answer = page.goto(f"{site.url}/ui/insights?{query}")
    assert answer.status == 400
    assert detail in page.inner_text("main")
    assert page.request.get(f"{site.url}/ui/insights.csv?{query}").status == 400


def _month(month: str, detect: float | None, incidents: int = 1) -> MonthRow:
    def spread(value: float | None) -> Spread:
        known = value is not None
        return Spread(count=int(known), missing=int(not known), median_s=value, p90_s=value)

    times = Times(
        incidents=incidents, detect=spread(detect), mitigate=spread(None), resolve=spread(None)
    )
    counts = {"SEV1": incidents, "SEV2": 0, "SEV3": 0, "SEV4": 0, "SEV5": 0}
    return MonthRow(month=month, by_severity=counts, times=times)


def test_a_month_without_data_breaks_the_line_instead_of_dropping_to_zero() -> None:
    months = [_month("2024-01", 300), _month("2024-02", 600), _month("2024-03", None, 0)]
    months += [_month("2024-04", 7200), _month("2024-05", 3600)]
    drawn = time_trends_svg(months)
    lines = re.findall(r'<polyline points="([^"]+)"[^>]*stroke-width="2.2"', drawn)
    assert [len(points.split()) for points in lines] == [2, 2]  # two runs: the gap is a gap
    assert drawn.count('class="point"') == 4
    assert "No times recorded" in drawn  # mitigate and resolve have none
    assert "2024-04 · time to detect: median 2 h, p90 2 h · 1 of 1 incidents" in drawn


def test_charts_escape_their_labels_and_say_when_there_is_nothing() -> None:
    hostile = '<script>alert("x")</script> & "quotes"'
    drawn = hbars_svg(
        "Incidents per service", [Bar(hostile, hostile, 3)], unit="incidents", empty=NO_INCIDENTS
    )
    assert "<script" not in drawn
    assert "&lt;script&gt;" in drawn
    assert 'data-key="_script_alert__x____script_____quotes_"' in drawn
    for empty in (
        time_trends_svg([_month("2024-01", None, 0)]),
        severity_bars_svg([_month("2024-01", None, 0)]),
        hbars_svg("Failure modes", [], unit="postmortems", empty=NO_INCIDENTS),
    ):
        assert NO_INCIDENTS in empty and "<circle" not in empty and 'class="bar"' not in empty
    many = [Bar(f"s{n}", f"service {n}", n) for n in range(1, 20)]
    assert "7 more in the CSV" in hbars_svg("x", many, unit="incidents", empty="", limit=12)


def test_durations_read_the_way_people_say_them() -> None:
    assert [short_duration(s) for s in (10, 300, 3600, 14400, 259200)] == [
        "10 s",
        "5 min",
        "1 h",
        "4 h",
        "3 d",
    ]
    assert duration(None) == "—"
    assert duration(9600.0) == "2 h 40 min"


def _signed_in(browser: Any, site: Site, role: Role) -> Any:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.on("dialog", lambda d: pytest.fail(f"a script ran: dialog {d.message!r}"))
    page.goto(site.url + "/ui/sign-in")
    page.fill("#api_key", site.keys[role])
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/incidents")
    return page


@needs_chromium
def test_a_reviewer_confirms_a_proposed_recurrence_on_the_postmortem_page(
    browser: Any, site: Site
) -> None:
    """Runs after the tests above: it changes the recurrences they count."""
    proposal = next(i for i in site.report.recurrences.items if i.state == "proposed")
    reviewer = _signed_in(browser, site, Role.REVIEWER)
    reviewer.goto(f"{site.url}/ui/postmortems/{proposal.postmortem_id}")
    row = reviewer.locator(
        f"#recurrences tr:has(a[href='/ui/postmortems/{proposal.past_postmortem_id}'])"
    )
    assert "may repeat" in row.inner_text() and "proposed" in row.inner_text()
    assert "same failure mode" in row.inner_text()
    row.locator("button[value=confirm]").click()
    reviewer.wait_for_url(f"**/ui/postmortems/{proposal.postmortem_id}#recurrences")
    row = reviewer.locator(
        f"#recurrences tr:has(a[href='/ui/postmortems/{proposal.past_postmortem_id}'])"
    )
    assert "confirmed" in row.inner_text() and "reviewer user" in row.inner_text()
    assert row.locator("button[value=confirm]").count() == 0
    reviewer.screenshot(path=str(SHOTS / "postmortem-recurrences.png"), full_page=True)
    # The earlier postmortem sees it from its side.
    reviewer.goto(f"{site.url}/ui/postmortems/{proposal.past_postmortem_id}")
    back = reviewer.locator(
        f"#recurrences tr:has(a[href='/ui/postmortems/{proposal.postmortem_id}'])"
    )
    assert "repeated by" in back.inner_text() and "confirmed" in back.inner_text()
    back.locator("button[value=dismiss]").click()
    reviewer.wait_for_url(f"**/ui/postmortems/{proposal.past_postmortem_id}#recurrences")
    assert "dismissed" in reviewer.inner_text("#recurrences")
    reviewer.context.close()


@needs_chromium
def test_an_engineer_cannot_decide_recurrences_and_bad_forms_are_refused(
    browser: Any, site: Site
) -> None:
    proposal = [i for i in site.report.recurrences.items if i.state == "proposed"][1]
    engineer = _signed_in(browser, site, Role.ENGINEER)
    engineer.goto(f"{site.url}/ui/postmortems/{proposal.postmortem_id}")
    assert engineer.locator("#recurrences tr.recurrence").count() >= 1
    assert engineer.locator("#recurrences button").count() == 0  # nothing to press
    engineer.goto(f"{site.url}/ui/action-items")  # a page with the session's forms
    csrf = engineer.locator("input[name=csrf]").first.get_attribute("value")
    path = f"/ui/postmortems/{proposal.postmortem_id}/recurrences/{proposal.past_postmortem_id}"
    form = {"csrf": csrf, "decision": "confirm"}
    assert engineer.request.post(site.url + path, form=form).status == 403
    engineer.context.close()
    reviewer = _signed_in(browser, site, Role.REVIEWER)
    no_csrf = reviewer.request.post(site.url + path, form={"decision": "confirm"})
    assert no_csrf.status in (403, 422)
    reviewer.goto(f"{site.url}/ui/postmortems/{proposal.postmortem_id}")
    token = reviewer.locator("#recurrences input[name=csrf]").first.get_attribute("value")
    bad = reviewer.request.post(site.url + path, form={"csrf": token, "decision": "approve"})
    assert bad.status == 422
    unknown = reviewer.request.post(
        site.url + f"/ui/postmortems/{proposal.postmortem_id}/recurrences/pm-nope",
        form={"csrf": token, "decision": "confirm"},
    )
    assert unknown.status == 404
    assert (
        "proposed"
        in reviewer.locator(
            f"#recurrences tr:has(a[href='/ui/postmortems/{proposal.past_postmortem_id}'])"
        ).inner_text()
    )
    reviewer.context.close()
