"""When an action item first appeared, which its default due date, overdue state and age count
from: a reviewed draft's items when it is finalized; imported ones (files or the API) on their
postmortem's date when that is earlier, so imported history is old, not new and due in two
weeks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from rca.domain import ActionStatus, Postmortem
from rca.store import Store
from rca.store.action_sync import first_appeared
from tests.factories import postmortem_data

TODAY = datetime.now(UTC).date()
OLD = date(2022, 3, 17)
ITEMS = [
    {"text": "Cache templates per worker", "kind": "prevent", "priority": "must"},
    {"text": "Alert on consumer lag", "kind": "detect", "priority": "should"},
    {"text": "Load-test template fetches", "kind": "process", "priority": "could"},
    {"text": "Rewrite the worker in Rust", "kind": "prevent", "priority": "wont"},
]


def _pm(ident: str, items: list[dict[str, Any]] = ITEMS, **changes: Any) -> Postmortem:
    data = postmortem_data(id=ident, title=ident, action_items=items, date=OLD.isoformat())
    return Postmortem.model_validate({**data, **changes})


def _due(store: Store, ident: str) -> dict[str, tuple[date | None, bool]]:
    rows = store.action_item_page(100, postmortem_id=ident)
    return {r.action.text: (r.due_on, r.overdue) for r in rows}


def test_imported_items_are_as_old_as_their_postmortem_finalized_ones_are_new(
    store: Store,
) -> None:
    store.save_postmortem(_pm("pm-file"), "import:pm-2022-03.md")
    store.save_postmortem(_pm("pm-api"), "api:k-1")
    store.save_postmortem(_pm("pm-draft"), "draft:d-1")
    old = {
        "Cache templates per worker": (date(2022, 3, 31), True),
        "Alert on consumer lag": (date(2022, 4, 16), True),
        "Load-test template fetches": (date(2022, 6, 15), True),
        "Rewrite the worker in Rust": (None, False),
    }
    assert _due(store, "pm-file") == _due(store, "pm-api") == old
    assert _due(store, "pm-draft") == {
        "Cache templates per worker": (TODAY + timedelta(days=14), False),
        "Alert on consumer lag": (TODAY + timedelta(days=30), False),
        "Load-test template fetches": (TODAY + timedelta(days=90), False),
        "Rewrite the worker in Rust": (None, False),
    }
    midnight = datetime(2022, 3, 17, tzinfo=UTC)
    appeared = {r.postmortem_id: r.created_at for r in store.action_item_page(100)}
    assert appeared["pm-file"] == appeared["pm-api"] == midnight
    assert appeared["pm-draft"] is not None and appeared["pm-draft"].date() == TODAY
    # The imported ones are overdue now, the finalized ones only after their two weeks.
    assert store.overdue_count(TODAY) == 6
    late = store.overdue_actions(TODAY, 10)
    assert [(r.postmortem_id, r.due_on) for r in late] == [
        ("pm-api", date(2022, 3, 31)),
        ("pm-file", date(2022, 3, 31)),
        ("pm-api", date(2022, 4, 16)),
        ("pm-file", date(2022, 4, 16)),
        ("pm-api", date(2022, 6, 15)),
        ("pm-file", date(2022, 6, 15)),
    ]
    assert store.overdue_count(TODAY + timedelta(days=15)) == 7  # and the finalized must
    measures = store.action_measures(OLD, OLD + timedelta(days=1), today=TODAY)
    assert measures.overdue == 6 and measures.open_items == 12
    # Ages: the eight imported ones from their postmortem's date, the four finalized ones 0.
    age = float((TODAY - OLD).days)
    assert (measures.open_age_median_days, measures.open_age_p90_days) == (age, age)


def test_an_item_added_later_first_appears_with_the_revision_that_brought_it(
    store: Store,
) -> None:
    store.save_postmortem(_pm("pm-x", ITEMS[:1]), "import:a.md")
    store.save_postmortem(_pm("pm-x", ITEMS[:2]), "import:a.md")  # an edit, imported
    page = "Page the owner on lag"
    added = [*ITEMS[:2], {"text": page, "kind": "detect", "priority": "must"}]
    store.save_postmortem(_pm("pm-x", added), "draft:d-2")  # a reviewed revision adds one
    assert _due(store, "pm-x") == {
        "Cache templates per worker": (date(2022, 3, 31), True),
        "Alert on consumer lag": (date(2022, 4, 16), True),  # imported: the postmortem's date
        page: (TODAY + timedelta(days=14), False),  # finalized: today
    }


def test_an_imported_item_already_closed_was_closed_when_it_appeared(store: Store) -> None:
    done = [{**ITEMS[0], "status": "done"}, {**ITEMS[1], "status": "wont_do"}]
    store.save_postmortem(_pm("pm-closed", done), "import:b.md")
    rows = store.action_item_page(100, postmortem_id="pm-closed")
    midnight = datetime(2022, 3, 17, tzinfo=UTC)
    assert [(r.action.status, r.created_at, r.closed_at) for r in rows] == [
        (ActionStatus.DONE, midnight, midnight),
        (ActionStatus.WONT_DO, midnight, midnight),
    ]
    assert store.overdue_count(TODAY) == 0


STAMP = datetime(2026, 5, 4, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("source", "day", "expected"),
    [
        ("import:x.md", "2026-04-01", datetime(2026, 4, 1, tzinfo=UTC)),
        ("api:k-1", "2026-04-01", datetime(2026, 4, 1, tzinfo=UTC)),
        ("import:x.md", "2026-05-04", datetime(2026, 5, 4, tzinfo=UTC)),  # midnight, earlier
        ("import:x.md", "2026-05-05", STAMP),  # dated after the save: the save
        ("import:x.md", None, STAMP),  # no date: the save
        ("draft:d-1", "2026-04-01", STAMP),  # a reviewed draft: when it was finalized
        ("import:draft:x.md", "2026-04-01", datetime(2026, 4, 1, tzinfo=UTC)),
    ],
)
def test_first_appeared(source: str, day: str | None, expected: datetime) -> None:
    assert first_appeared(_pm("pm-y", date=day), STAMP, source) == expected
