"""Action items by stable key: reordered revisions keep their follow-up, due dates by priority
or set by a reviewer, counted from when an item first appeared (a finalized draft: then; an
import: its postmortem's date), overdue lists and counts around a fixed day, history,
measures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from rca.config import ActionSettings
from rca.domain import ActionStatus, Postmortem
from rca.errors import InvalidArgument, NotFound
from rca.store import Store
from rca.store.action_measures import action_measures, overdue, overdue_count
from rca.store.action_rules import item_keys, normalised
from rca.store.action_tables import action_items
from rca.store.action_updates import ActionChange
from rca.store.postmortem_facts import replace_facts
from tests.factories import postmortem_data

TODAY = datetime.now(UTC).date()
ITEMS = [
    {"text": "Cache templates per worker", "kind": "prevent", "priority": "must"},
    {"text": "Alert on consumer lag", "kind": "detect", "priority": "should"},
    {"text": "Load-test template fetches", "kind": "process", "priority": "could"},
    {"text": "Rewrite the worker in Rust", "kind": "prevent", "priority": "wont"},
]


def _pm(items: list[dict[str, Any]] = ITEMS, **changes: Any) -> Postmortem:
    """A postmortem dated today unless told: its imported items first appear today."""
    data = postmortem_data(action_items=items, date=TODAY.isoformat())
    return Postmortem.model_validate({**data, **changes})


def _rows(store: Store, ident: str = "pm-test-queue-2025", **kw: Any) -> dict[str, Any]:
    return {r.action.text: r for r in store.action_item_page(100, postmortem_id=ident, **kw)}


def test_the_key_ignores_case_spacing_and_a_final_full_stop() -> None:
    assert normalised("  Alert ON\tconsumer   lag. ") == "alert on consumer lag"
    a, b, c, d = item_keys(["Alert on lag", "alert  on LAG.", "Alert on lag!", "Alert on lag"])
    assert len(a) == 12 and int(a, 16) >= 0
    assert b == f"{a}-2" and d == f"{a}-3" and c != a


def test_a_reordered_revision_keeps_status_due_date_and_tracker_by_key(store: Store) -> None:
    store.save_postmortem(_pm(), "import")
    before = _rows(store)
    lag = before["Alert on consumer lag"]
    assert lag.item == 1 and lag.key == item_keys([i["text"] for i in ITEMS])[1]
    change = ActionChange(
        status=ActionStatus.IN_PROGRESS,
        due_on=date(2030, 5, 1),
        tracker_key="OPS-7",
        tracker_url="https://tracker.example/OPS-7",
    )
    store.change_action_item("pm-test-queue-2025", lag.key, change, "rev")
    # A new revision: reversed, the lag item reworded in case and spacing, re-prioritised.
    moved = [dict(i) for i in reversed(ITEMS)]
    moved[2] |= {"text": "alert on  CONSUMER lag.", "priority": "must", "kind": "mitigate"}
    store.save_postmortem(_pm(moved), "import-2")
    after = _rows(store)
    again = after["alert on  CONSUMER lag."]
    assert (again.key, again.item, again.action.status) == (lag.key, 2, ActionStatus.IN_PROGRESS)
    assert (again.due_on, again.due_set) == (date(2030, 5, 1), True)
    assert (again.tracker_key, again.tracker_url) == ("OPS-7", "https://tracker.example/OPS-7")
    assert again.action.priority == "must" and again.action.kind == "mitigate"
    assert sorted(r.item for r in after.values()) == [0, 1, 2, 3]
    assert {r.key for r in after.values()} == {r.key for r in before.values()}
    history = store.action_history("pm-test-queue-2025", lag.key, 10)
    assert [(h.field, h.old, h.new, h.actor) for h in history] == [
        ("status", "open", "in_progress", "rev"),
        ("due_on", None, "2030-05-01", "rev"),
        ("tracker_key", None, "OPS-7", "rev"),
        ("tracker_url", None, "https://tracker.example/OPS-7", "rev"),
    ]
    # Addressed by its new position too.
    assert store.set_action_status("pm-test-queue-2025", 2, ActionStatus.DONE, "rev").key == lag.key


def test_a_reworded_item_is_new_and_the_old_one_returns_with_its_state(store: Store) -> None:
    store.save_postmortem(_pm(), "import")
    cache = _rows(store)["Cache templates per worker"]
    store.set_action_status("pm-test-queue-2025", cache.key, ActionStatus.DONE, "rev")
    reworded = [{**ITEMS[0], "text": "Cache rendered templates per worker"}, *ITEMS[1:]]
    store.save_postmortem(_pm(reworded), "import-2")
    rows = _rows(store)
    assert rows["Cache rendered templates per worker"].action.status is ActionStatus.OPEN
    assert "Cache templates per worker" not in rows and len(rows) == 4
    with pytest.raises(NotFound):  # not in the latest revision
        store.set_action_status("pm-test-queue-2025", cache.key, ActionStatus.OPEN, "rev")
    assert len(store.action_history("pm-test-queue-2025", cache.key, 10)) == 1  # still readable
    store.save_postmortem(_pm(), "import-3")
    back = _rows(store)["Cache templates per worker"]
    assert (back.key, back.action.status, back.updated_by) == (cache.key, ActionStatus.DONE, "rev")


def test_an_untracked_status_follows_the_document_a_tracked_one_wins(store: Store) -> None:
    store.save_postmortem(_pm(), "import")
    lag = _rows(store)["Alert on consumer lag"]
    store.set_action_status("pm-test-queue-2025", lag.key, ActionStatus.WONT_DO, "rev")
    done = [{**i, "status": "done"} for i in ITEMS]
    store.save_postmortem(_pm(done), "import-2")
    rows = _rows(store)
    assert rows["Alert on consumer lag"].action.status is ActionStatus.WONT_DO
    cache = rows["Cache templates per worker"]
    assert cache.action.status is ActionStatus.DONE and cache.closed_at is not None
    assert [(h.actor, h.old, h.new) for h in store.action_history(cache.postmortem_id, 0, 5)] == [
        ("import-2", "open", "done")
    ]


def test_default_due_dates_by_priority_come_from_the_settings(store: Store) -> None:
    store.save_postmortem(_pm(), "import")
    due = {t: (r.due_on, r.due_set) for t, r in _rows(store).items()}
    assert due == {
        "Cache templates per worker": (TODAY + timedelta(days=14), False),
        "Alert on consumer lag": (TODAY + timedelta(days=30), False),
        "Load-test template fetches": (TODAY + timedelta(days=90), False),
        "Rewrite the worker in Rust": (None, False),
    }
    store.actions = ActionSettings(must_days=1, should_days=2, could_days=3)
    shorter = {t: r.due_on for t, r in _rows(store).items()}
    assert shorter["Cache templates per worker"] == TODAY + timedelta(days=1)
    assert shorter["Load-test template fetches"] == TODAY + timedelta(days=3)


def test_a_reviewer_sets_and_clears_a_due_date_the_same_value_changes_nothing(
    store: Store,
) -> None:
    store.save_postmortem(_pm(), "import")
    rust = _rows(store)["Rewrite the worker in Rust"]
    ident = rust.postmortem_id
    set_on = store.change_action_item(ident, rust.key, ActionChange(due_on=date(2031, 1, 2)), "a")
    assert (set_on.due_on, set_on.due_set) == (date(2031, 1, 2), True)
    store.change_action_item(ident, rust.key, ActionChange(due_on=date(2031, 1, 2)), "b")
    cleared = store.change_action_item(ident, rust.key, ActionChange(due_on=None), "c")
    assert (cleared.due_on, cleared.due_set) == (None, False)
    history = store.action_history(ident, rust.key, 10)
    assert [(h.actor, h.old, h.new) for h in history] == [
        ("a", None, "2031-01-02"),
        ("c", "2031-01-02", None),
    ]
    assert store.action_history(ident, rust.key, 10, after=history[0].id) == history[1:]


def test_overdue_items_are_listed_and_counted_around_a_fixed_day(store: Store) -> None:
    store.save_postmortem(_pm(), "import")
    store.save_postmortem(_pm(id="pm-other", title="Other"), "import")
    rows = _rows(store)
    must, should = rows["Cache templates per worker"], rows["Alert on consumer lag"]
    store.set_action_status("pm-other", must.key, ActionStatus.DONE, "rev")  # done: never late
    store.change_action_item("pm-other", should.key, ActionChange(due_on=TODAY), "rev")
    actions = store.actions
    assert overdue_count(store.engine, TODAY, actions=actions) == 0
    # Tomorrow the item due today is late; 15 days on the open must-have too; 31 the should.
    day = TODAY + timedelta(days=1)
    late = overdue(store.engine, day, 10, actions=actions)
    assert [(r.postmortem_id, r.key) for r in late] == [("pm-other", should.key)]
    assert late[0].overdue
    day = TODAY + timedelta(days=15)
    assert overdue_count(store.engine, day, actions=actions) == 2
    assert [r.postmortem_id for r in overdue(store.engine, day, 10, actions=actions)] == [
        "pm-other",  # due today
        "pm-test-queue-2025",  # due in 14 days
    ]
    day = TODAY + timedelta(days=31)
    assert overdue_count(store.engine, day, actions=actions) == 3
    assert len(overdue(store.engine, day, 2, actions=actions)) == 2
    page = store.action_item_page(100, overdue=True, today=day)
    assert {(r.postmortem_id, r.action.text) for r in page} == {
        ("pm-other", "Alert on consumer lag"),
        ("pm-test-queue-2025", "Alert on consumer lag"),
        ("pm-test-queue-2025", "Cache templates per worker"),
    }
    assert all(r.overdue for r in page)
    not_late = store.action_item_page(100, overdue=False, today=day)
    assert len(not_late) == 5 and not any(r.overdue for r in not_late)
    soon = store.action_item_page(100, due_before=TODAY + timedelta(days=15))
    assert {(r.postmortem_id, r.action.text) for r in soon} == {
        ("pm-other", "Alert on consumer lag"),  # due today
        ("pm-other", "Cache templates per worker"),  # due in 14 days (though done)
        ("pm-test-queue-2025", "Cache templates per worker"),
    }


def test_hostile_changes_are_refused_and_store_nothing(store: Store) -> None:
    store.save_postmortem(_pm(), "import")
    key = _rows(store)["Alert on consumer lag"].key
    ident = "pm-test-queue-2025"
    for change in (
        ActionChange(due_on=date(1969, 12, 31)),
        ActionChange(due_on=date(2201, 1, 1)),
        ActionChange(tracker_url="javascript:alert(1)"),
        ActionChange(tracker_url="https://user:pw@tracker.example/1"),
        ActionChange(tracker_url="https://tracker.example/" + "a" * 2_000),
        ActionChange(tracker_url="https://tracker.example/a b"),
        ActionChange(tracker_key="x" * 201),
        ActionChange(tracker_key="OPS-1\u202e"),
        ActionChange(tracker_key=" "),
    ):
        with pytest.raises(InvalidArgument):
            store.change_action_item(ident, key, change, "rev")
    for item in ("0123456789ab", "nope", "-1", "9" * 7, 4):
        with pytest.raises(NotFound):
            store.set_action_status(ident, item, ActionStatus.DONE, "rev")
    with pytest.raises(NotFound):
        store.set_action_status("pm-missing", key, ActionStatus.DONE, "rev")
    assert store.action_history(ident, key, 10) == []


def test_action_measures_over_a_date_range_and_services(store: Store) -> None:
    store.save_postmortem(_pm(date="2025-04-09"), "import")
    store.save_postmortem(_pm(id="pm-b", date="2025-05-01", services=["billing"]), "import")
    store.save_postmortem(_pm(id="pm-old", date="2019-01-01"), "import")
    keys = item_keys(i["text"] for i in ITEMS)
    store.set_action_status("pm-test-queue-2025", keys[0], ActionStatus.DONE, "r")
    store.set_action_status("pm-test-queue-2025", keys[3], ActionStatus.WONT_DO, "r")
    store.set_action_status("pm-b", keys[1], ActionStatus.IN_PROGRESS, "r")
    with store.engine.begin() as conn:  # pm-b's items appeared 10 days ago
        conn.execute(
            update(action_items)
            .where(action_items.c.postmortem_id == "pm-b")
            .values(created_at=datetime.now(UTC) - timedelta(days=10))
        )
    replace_facts(
        store.engine,
        [
            ("pm-test-queue-2025", 1, [("service", "notifications-worker")]),
            ("pm-b", 1, [("service", "billing")]),
        ],
    )
    day = TODAY + timedelta(days=1)
    got = action_measures(
        store.engine, date(2025, 1, 1), date(2026, 1, 1), today=day, actions=store.actions
    )
    assert got.items == 8
    assert got.by_status == {"open": 5, "in_progress": 1, "done": 1, "wont_do": 1}
    assert got.completion_rate == pytest.approx(1 / 7)
    assert got.open_items == 6
    # Ages on that day: pm-b's four open ones 11 (ten days ago); the two open ones of the
    # imported pm-test-queue-2025 first appeared on its date.
    old = (day - date(2025, 4, 9)).days
    assert old > 11 and (got.open_age_median_days, got.open_age_p90_days) == (11.0, float(old))
    assert got.overdue == 2  # those two: should and could, due 2025-05-09 and 2025-07-08
    assert store.action_measures(date(2025, 1, 1), date(2026, 1, 1), today=day) == got
    billing = action_measures(
        store.engine,
        date(2025, 1, 1),
        date(2026, 1, 1),
        ["billing"],
        today=TODAY + timedelta(days=15),
        actions=store.actions,
    )
    assert billing.items == 4 and billing.overdue == 1  # its must-have, due on TODAY + 4
    assert billing.completion_rate == 0.0
    empty = action_measures(
        store.engine, date(2030, 1, 1), date(2031, 1, 1), today=day, actions=store.actions
    )
    assert (empty.items, empty.completion_rate, empty.open_age_median_days) == (0, None, None)
