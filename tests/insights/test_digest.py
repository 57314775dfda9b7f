"""The digest over a real SQLite store whose clock the test sets: what counts as new in a
window and what does not (boundaries, late and back-filled incidents, revisions that were not
finalized, dismissed recurrences), overdue items on the day it is made, bounded sections, and
hostile text through Markdown, HTML and redaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from markdown_it import MarkdownIt

from rca.domain import Incident, Postmortem
from rca.errors import InvalidArgument
from rca.insights.digest import build
from rca.insights.digest_render import markdown, md, page
from rca.store import Store, incident_records, postmortem_records, recurrences
from rca.store.recurrences import Proposal
from tests.factories import incident_data, postmortem_data

START = datetime(2025, 6, 2, tzinfo=UTC)  # a Monday
END = START + timedelta(days=7)
DAY = timedelta(days=1)


class Clock:
    """The time the store stamps rows with."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock(START - 30 * DAY)
    for module in (incident_records, postmortem_records, recurrences):
        monkeypatch.setattr(module, "now", found)
    return found


def incident(ident: str, started: datetime, resolved: bool = True, **kw: Any) -> Incident:
    data = incident_data(
        id=ident,
        started_at=started.isoformat(),
        detected_at=(started + timedelta(minutes=5)).isoformat(),
        mitigated_at=(started + timedelta(minutes=50)).isoformat() if resolved else None,
        resolved_at=(started + timedelta(minutes=80)).isoformat() if resolved else None,
        **kw,
    )
    return Incident.model_validate(data)


def postmortem(ident: str, items: list[dict[str, Any]], **kw: Any) -> Postmortem:
    return Postmortem.model_validate(
        postmortem_data(id=ident, incident_id=None, action_items=items, **kw)
    )


def item(text: str, priority: str = "must", status: str = "open", **kw: Any) -> dict[str, Any]:
    return {"text": text, "kind": "prevent", "priority": priority, "status": status, **kw}


@pytest.fixture
def week(store: Store, clock: Clock) -> Iterator[Store]:
    """A store with a known history around the week [START, END)."""
    clock.at = START - 10 * DAY
    store.save([incident("inc-before", START - 10 * DAY)], "test")
    store.save(
        [
            postmortem(
                "pm-old",
                [item("Fix the old thing", owner="db-team"), item("Tidy up", "should")],
                date="2025-05-23",  # imported the day it happened: its items appear then
                title="Old outage",
            ),
            postmortem("pm-past", [item("Add the pool alert")], date="2025-05-23", title="Past"),
            postmortem("pm-done", [item("Done", status="done")], title="Done and dusted"),
        ],
        "import:old.md",
    )
    recurrences.propose(store.engine, "pm-old", [Proposal("pm-past", 0.7, ["same service"])])
    clock.at = START  # the first instant of the window counts
    store.save([incident("inc-edge", START)], "test")
    clock.at = START + DAY
    store.save(
        [
            incident("inc-sev3", START + DAY, resolved=False, severity="SEV3", services=["db"]),
            incident("inc-sev1", START + 2 * DAY, severity="SEV1", services=["edge", "api"]),
        ],
        "test",
    )
    clock.at = START + 2 * DAY
    store.save([incident("inc-late", START - 3 * DAY, severity="SEV2")], "pagerduty")
    store.save([incident("inc-2023", datetime(2023, 1, 5, tzinfo=UTC))], "import:history")
    history = postmortem("pm-2023", [item("Old work", status="done")], date="2023-01-05")
    store.save([history], "import:history")  # history brought in: counted, not listed
    new = postmortem("pm-new", [item("Cache templates", "could")], date="2025-06-03", title="New")
    store.save([new], "import:x")  # a recent incident's postmortem, imported: new
    store.save([postmortem("pm-fin", [item("Alert on lag", owner="sre")], title="Fin")], "draft:d1")
    old = postmortem_data(id="pm-old", incident_id=None, date="2025-05-23", title="Old outage")
    old["action_items"] = [item("Fix the old thing", owner="db-team"), item("Tidy up", "should")]
    store.save([Postmortem.model_validate({**old, "summary": "Edited."})], "import:old.md")
    past = postmortem(
        "pm-past",
        [item("Add the pool alert"), item("Write the runbook", "should")],
        date="2025-05-23",
        title="Past",
    )
    store.save([past], "draft:d2")  # revision 2 of an old postmortem, finalized this week
    clock.at = START + 3 * DAY
    recurrences.propose(store.engine, "pm-new", [Proposal("pm-past", 0.9, ["same mode"])])
    recurrences.propose(store.engine, "pm-fin", [Proposal("pm-old", 0.6, ["same service"])])
    recurrences.propose(store.engine, "pm-fin", [Proposal("pm-done", 0.5, ["same service"])])
    recurrences.decide(store.engine, "pm-new", "pm-past", True, "maria", ["Add the pool alert"])
    recurrences.decide(store.engine, "pm-fin", "pm-done", False, "maria", [])
    recurrences.decide(store.engine, "pm-old", "pm-past", True, "maria", [])
    clock.at = END  # the end is not included
    store.save([incident("inc-after", END)], "test")
    store.save([postmortem("pm-after", [item("Later")], title="After")], "draft:d3")
    yield store


def test_each_section_holds_what_is_new_in_the_window_and_nothing_else(week: Store) -> None:
    found = build(week, START, END, now=END)
    assert [i.id for i in found.incidents.items] == ["inc-sev1", "inc-late", "inc-sev3", "inc-edge"]
    assert found.counts.incidents_backfilled == 1  # inc-2023: counted, not listed
    assert found.counts.incidents_by_severity == {
        "SEV1": 1,
        "SEV2": 1,
        "SEV3": 2,
        "SEV4": 0,
        "SEV5": 0,
    }
    assert found.counts.incidents_unresolved == 1
    sev1 = found.incidents.items[0]
    assert sev1.services == ["api", "edge"] and sev1.link == "/v1/incidents/inc-sev1"
    assert sev1.detected_at == START + 2 * DAY + timedelta(minutes=5)
    assert sev1.resolved_at == START + 2 * DAY + timedelta(minutes=80)
    assert found.incidents.items[2].resolved_at is None
    # pm-old's revision 2 was an import of an edit: not new. pm-past's was finalized.
    shown = [(p.id, p.how, p.revision, p.latest_revision) for p in found.postmortems.items]
    assert sorted(shown) == [
        ("pm-fin", "finalized", 1, 1),
        ("pm-new", "imported", 1, 1),
        ("pm-past", "finalized", 2, 2),
    ]
    assert (found.counts.postmortems_finalized, found.counts.postmortems_imported) == (2, 1)
    new_items = [(a.postmortem_id, a.text, a.priority.value) for a in found.new_action_items.items]
    assert new_items == [  # must first
        ("pm-fin", "Alert on lag", "must"),
        ("pm-past", "Write the runbook", "should"),
        ("pm-new", "Cache templates", "could"),
    ]
    assert found.counts.new_action_items_open == 3
    links = {(r.postmortem_id, r.past_postmortem_id): r for r in found.recurrences.items}
    assert list(links) == [("pm-new", "pm-past"), ("pm-old", "pm-past"), ("pm-fin", "pm-old")]
    flagged = links["pm-new", "pm-past"]
    assert flagged.flagged and flagged.open_actions == ["Add the pool alert"]
    assert (flagged.postmortem_title, flagged.past_postmortem_title) == ("New", "Past")
    assert flagged.decided_by == "maria" and flagged.at == START + 3 * DAY
    assert not links["pm-old", "pm-past"].flagged  # proposed before, confirmed in the window
    assert links["pm-fin", "pm-old"].state.value == "proposed"
    assert found.counts.model_dump() | {"incidents_by_severity": None} == {
        "incidents": 4,
        "incidents_by_severity": None,
        "incidents_unresolved": 1,
        "incidents_backfilled": 1,
        "postmortems": 3,
        "postmortems_finalized": 2,
        "postmortems_imported": 1,
        "postmortems_backfilled": 1,
        "new_action_items": 3,
        "new_action_items_open": 3,
        "overdue_action_items": 2,
        "recurrences": 3,
        "recurrences_confirmed": 2,
        "recurrences_proposed": 1,
        "recurrences_flagged": 1,
    }
    assert not found.empty


def test_imported_history_is_counted_not_listed_and_its_items_are_not_new(
    week: Store, clock: Clock
) -> None:
    clock.at = START + 4 * DAY
    store = week
    for ident, day in (("pm-2023-open", "2023-03-01"), ("pm-edge", "2025-05-03")):
        store.save([postmortem(ident, [item(f"Fix {ident}")], date=day)], "import:history")
    store.save([postmortem("pm-day-before", [], date="2025-05-02")], "api:k-1")
    store.save([postmortem("pm-fin-old", [item("Finish it")], date="2023-03-01")], "draft:d4")
    found = build(store, START, END, now=END)
    # Dated more than 30 days before the window (2025-05-03): history; finalized ones and
    # recent imports are listed.
    listed = {p.id: p.how for p in found.postmortems.items}
    assert listed == {
        "pm-fin": "finalized",
        "pm-new": "imported",
        "pm-past": "finalized",
        "pm-edge": "imported",
        "pm-fin-old": "finalized",
    }
    c = found.counts
    assert (c.postmortems, c.postmortems_finalized, c.postmortems_imported) == (5, 3, 2)
    assert c.postmortems_backfilled == 3  # pm-2023, pm-2023-open, pm-day-before
    # An imported item first appeared on its postmortem's date: old work, overdue, not new.
    new_items = {a.postmortem_id for a in found.new_action_items.items}
    assert new_items == {"pm-fin", "pm-past", "pm-new", "pm-fin-old"}
    late = {a.postmortem_id: (a.due_on, a.appeared_at) for a in found.overdue_action_items.items}
    assert late["pm-2023-open"] == (date(2023, 3, 15), datetime(2023, 3, 1, tzinfo=UTC))
    assert late["pm-edge"] == (date(2025, 5, 17), datetime(2025, 5, 3, tzinfo=UTC))
    assert "pm-fin-old" not in late  # finalized in the window: due two weeks on
    text = markdown(found)
    assert "5 postmortems (3 finalized, 2 imported), and 3 older postmortems imported" in text
    section = text.split("## Postmortems (5)")[1].split("## New action items")[0]
    assert "`pm-edge`" in section and "pm-2023" not in section and "pm-day-before" not in section
    assert "and 3 older postmortems imported" in page(found)
    # A window that brought only history says so, and is otherwise empty.
    clock.at = END + 2 * DAY
    store.save([postmortem("pm-2024", [item("Old")], date="2024-01-01")], "import:history")
    quiet = build(store, END + DAY, END + 8 * DAY, now=END + 8 * DAY)
    assert quiet.postmortems.total == quiet.new_action_items.total == 0
    assert "0 postmortems, and 1 older postmortem imported" in markdown(quiet)


def test_overdue_items_are_counted_on_the_day_the_digest_is_made(week: Store) -> None:
    found = build(week, START, END, now=END + timedelta(hours=9))
    assert found.window.overdue_on == END.date()
    late = [
        (a.postmortem_id, a.text, a.owner, a.days_late) for a in found.overdue_action_items.items
    ]
    # Both appeared ten days before the window: a must is due after 14 days.
    assert late == [
        ("pm-old", "Fix the old thing", "db-team", 3),
        ("pm-past", "Add the pool alert", None, 3),
    ]
    assert found.overdue_action_items.items[0].due_on == (START + 4 * DAY).date()
    earlier = build(week, START, END, now=START + 3 * DAY)
    assert earlier.overdue_action_items.total == 0
    assert earlier.overdue_action_items.items == []


def test_sections_are_bounded_with_their_totals_and_the_most_pressing_first(week: Store) -> None:
    found = build(week, START, END, now=END, limit=1)
    assert [i.id for i in found.incidents.items] == ["inc-sev1"]
    assert (found.incidents.total, found.incidents.more) == (4, 3)
    assert [r.flagged for r in found.recurrences.items] == [True]
    assert (found.recurrences.total, found.recurrences.more) == (3, 2)
    assert found.new_action_items.items[0].priority.value == "must"
    text = markdown(found)
    assert "- …and 3 more" in text and "## New incidents (4)" in text
    assert "…and 3 more" in page(found)
    with pytest.raises(InvalidArgument):
        build(week, START, END, limit=0)
    with pytest.raises(InvalidArgument):
        build(week, END, START)


def test_an_empty_window_says_so_in_every_section(store: Store) -> None:
    found = build(store, START, END, now=END)
    assert found.empty and found.counts.model_dump()["incidents"] == 0
    assert found.redacted == {}
    text, html = markdown(found), page(found)
    for line in (
        "Nothing new in this window, and nothing overdue.",
        "No incident started or was recorded in this window.",
        "No postmortem was finalized or imported in this window.",
        "No new action item in this window.",
        "No action item is overdue.",
        "No recurrence was proposed or confirmed in this window.",
    ):
        assert line in text and line in html


def test_a_quiet_window_is_not_empty_while_items_are_overdue(week: Store) -> None:
    found = build(week, datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 8, tzinfo=UTC), now=END)
    assert found.counts.incidents == found.counts.postmortems == 0
    assert found.overdue_action_items.total == 2 and not found.empty
    assert "Nothing new in this window" not in markdown(found)


# --- hostile text ----------------------------------------------------------------------------

HOSTILE = (
    "**boom** [click me](http://evil.example/x) ![pixel](http://evil.example/p.png) "
    "<img src=x onerror=alert(1)> <script>alert(2)</script> `code` &amp; | cell | ~~gone~~ "
    "@channel #123 $x$ \x1b[31mred\x1b[0m \u202egnp.exe"
)
SECRET = "password=hunter2-Sup3rSecret"
EMAIL = "alice.oncall@example.com"


@pytest.fixture
def hostile(store: Store, clock: Clock) -> Store:
    clock.at = START + DAY
    store.save(
        [
            incident(
                "inc-hostile", START + DAY, title=f"{HOSTILE} {SECRET}", services=["<b>svc</b>"]
            )
        ],
        "test",
    )
    items = [item(f"Rotate it: {SECRET} {HOSTILE}", owner=EMAIL)]
    store.save([postmortem("pm-hostile", items, title=f"# Heading {HOSTILE}")], "draft:d9")
    clock.at = START - 20 * DAY
    late = postmortem(
        "pm-late", [item(f"Mail {EMAIL} [x](javascript:alert(1))")], date="2025-05-13"
    )
    store.save([late], "t")
    return store


class Parsed(HTMLParser):
    """The tags of a page, their attributes, and the cells of each table row."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: set[str] = set()
        self.rows: list[int] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes |= {name for name, _ in attrs}
        if tag == "tr":
            self.rows.append(0)
        elif tag in ("td", "th"):
            self.rows[-1] += 1


def _tags(html: str) -> list[str]:
    return Parsed(html).tags


def test_markdown_renders_hostile_text_as_text(hostile: Store) -> None:
    found = build(hostile, START, END, now=END)
    text = markdown(found)
    rendered = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(text)
    tags = set(_tags(rendered))
    assert tags <= {"h1", "h2", "p", "ul", "li", "strong", "code", "em"}, tags
    assert rendered.count("<h1>") == 1  # the digest's own title only
    assert rendered.count("<h2>") == 5
    assert "<em>" in rendered  # only our own "_Redacted: ..._" line
    assert rendered.count("<em>") == 1
    strong = [line for line in rendered.splitlines() if "boom" in line]
    assert strong and all("<strong>boom" not in line for line in strong)
    assert "<code>code</code>" not in rendered
    assert "http://evil.example/x" in rendered  # the text is kept, as text
    assert "\x1b" not in text and "\u202e" not in text
    for line in text.splitlines():
        assert not line.startswith("# Heading")


def test_html_escapes_every_untrusted_string(hostile: Store) -> None:
    html = page(build(hostile, START - 30 * DAY, END, now=END))
    parsed = Parsed(html)
    assert set(parsed.tags) <= {
        "html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "p", "ul", "li",
        "section", "table", "thead", "tbody", "tr", "th", "td", "br", "code", "span",
    }  # fmt: skip
    assert parsed.attributes <= {"lang", "charset", "name", "content", "class"}
    assert parsed.tags.count("style") == 1 and parsed.tags.count("h1") == 1
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;svc&lt;/b&gt;" in html
    assert "url(" not in html and "@import" not in html  # the CSS loads nothing
    # Each section's rows have as many cells as its header, an overdue new item too.
    tables = html.split("<table>")[1:]
    for table in tables:
        widths = Parsed("<table>" + table).rows
        assert len(set(widths)) == 1, widths
    assert len(tables) == 4  # no recurrence: that section says so instead


def test_secrets_and_personal_data_are_redacted_everywhere(hostile: Store) -> None:
    found = build(hostile, START - 30 * DAY, END, now=END)
    as_json = found.model_dump_json()
    for shown in (as_json, markdown(found), page(found)):
        assert "hunter2" not in shown and "Sup3rSecret" not in shown
        assert "alice.oncall" not in shown and "example.com" not in shown
    owners = {a.owner for a in found.new_action_items.items}
    assert owners == {"EMAIL_1", None}  # one table: the same address, the same placeholder
    assert any("EMAIL_1" in a.text for a in found.new_action_items.items)
    assert found.redacted.get("EMAIL") == 1 and found.redacted.get("SECRET", 0) >= 1
    assert "Redacted: " in markdown(found)


def test_long_text_is_clipped(store: Store, clock: Clock) -> None:
    clock.at = START + DAY
    store.save([incident("inc-long", START + DAY, title="x" * 3_000)], "test")
    title = build(store, START, END, now=END).incidents.items[0].title
    assert len(title) == 300 and title.endswith("…")


def test_md_escapes_what_could_start_markup() -> None:
    assert (
        md("a [b](c) *d* _e_ <f> `g` h\\i") == "a \\[b\\](c) \\*d\\* \\_e\\_ \\<f\\> \\`g\\` h\\\\i"
    )
    assert md("two\nlines") == "two lines"
