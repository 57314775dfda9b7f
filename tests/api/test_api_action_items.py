"""Action-item follow-up through the API and the board: keys, due dates (counted from an
imported postmortem's date), tracker references, history, overdue lists and counts; hostile
input refused as problem+json."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

from rca.store.action_rules import item_keys
from rca.store.keys import Role
from tests.api.support import Api
from tests.api.test_api_postmortems import all_pages, assert_problem, import_pm, patch, pm_body

TEXTS = ["Load test pool changes", "Alert on pool saturation", "Document the rollback"]
KEYS = item_keys(TEXTS)


def recent(ident: str = "pm-test-1") -> dict[str, Any]:
    """`pm_body` dated today: its items' default due dates are still ahead."""
    return pm_body(ident, date=datetime.now(UTC).date().isoformat())


def _item(api: Api, key: str, ident: str = "pm-test-1") -> dict[str, Any]:
    items = api.get("/v1/action-items", params={"postmortem_id": ident}).json()["items"]
    return next(i for i in items if i["key"] == key)


def test_an_item_is_updated_by_key_and_its_history_says_who_and_when(api: Api) -> None:
    import_pm(api, recent())
    body = {
        "status": "in_progress",
        "due_on": "2031-03-01",
        "tracker_key": "OPS-12",
        "tracker_url": "https://tracker.example/browse/OPS-12",
    }
    updated = patch(api, f"/v1/action-items/pm-test-1/{KEYS[1]}", json=body)
    assert updated.status_code == 200, updated.text
    row = updated.json()
    assert row["key"] == KEYS[1] and row["item"] == 1 and row["status"] == "in_progress"
    assert (row["due_on"], row["due_set"], row["overdue"]) == ("2031-03-01", True, False)
    assert (row["tracker_key"], row["tracker_url"]) == (body["tracker_key"], body["tracker_url"])
    assert _item(api, KEYS[1]) == row
    assert api.get("/v1/postmortems/pm-test-1").json()["action_items"][1] == row
    # The same values again change nothing; clearing the due date goes back to the default.
    assert patch(api, f"/v1/action-items/pm-test-1/{KEYS[1]}", json=body).json() == row
    cleared = patch(api, f"/v1/action-items/pm-test-1/{KEYS[1]}", json={"due_on": None}).json()
    assert cleared["due_set"] is False and cleared["due_on"] != "2031-03-01"
    history = api.get(f"/v1/action-items/pm-test-1/{KEYS[1]}/history").json()
    assert [(h["field"], h["old"], h["new"], h["actor"]) for h in history["items"]] == [
        ("status", "open", "in_progress", "test reviewer"),
        ("due_on", None, "2031-03-01", "test reviewer"),
        ("tracker_key", None, "OPS-12", "test reviewer"),
        ("tracker_url", None, "https://tracker.example/browse/OPS-12", "test reviewer"),
        ("due_on", "2031-03-01", None, "test reviewer"),
    ]
    paged = all_pages(api, f"/v1/action-items/pm-test-1/{KEYS[1]}/history", limit=2)
    assert paged == history["items"]
    by_position = api.get("/v1/action-items/pm-test-1/1/history").json()["items"]
    assert by_position == history["items"]


def test_a_reordered_revision_keeps_the_follow_up(api: Api) -> None:
    import_pm(api, recent())
    patch(api, f"/v1/action-items/pm-test-1/{KEYS[0]}", json={"status": "done"})
    reordered = recent()
    reordered["action_items"] = list(reversed(reordered["action_items"]))
    import_pm(api, reordered)
    moved = _item(api, KEYS[0])
    assert (moved["item"], moved["status"], moved["updated_by"]) == (2, "done", "test reviewer")
    assert _item(api, KEYS[2])["item"] == 0
    # The old positional route names the item at that position now.
    assert (
        patch(api, "/v1/action-items/pm-test-1/0", json={"status": "open"}).json()["key"]
        == (KEYS[2])
    )


def test_overdue_items_are_listed_and_counted(api: Api) -> None:
    import_pm(api, recent())
    import_pm(api, recent("pm-test-2"))
    assert api.get("/v1/action-items/overdue-count").json()["overdue"] == 0
    patch(api, f"/v1/action-items/pm-test-2/{KEYS[1]}", json={"due_on": "2020-01-31"})
    patch(api, f"/v1/action-items/pm-test-2/{KEYS[0]}", json={"due_on": "2020-02-01"})
    patch(api, f"/v1/action-items/pm-test-2/{KEYS[0]}", json={"status": "done"})  # not late
    late = api.get("/v1/action-items", params={"overdue": "true"}).json()["items"]
    assert [(i["postmortem_id"], i["key"], i["overdue"]) for i in late] == [
        ("pm-test-2", KEYS[1], True)
    ]
    assert api.get("/v1/action-items/overdue-count").json()["overdue"] == 1
    others = all_pages(api, "/v1/action-items", overdue="false")
    assert len(others) == 5 and not any(i["overdue"] for i in others)
    early = api.get("/v1/action-items", params={"due_before": "2020-02-02"}).json()["items"]
    assert [(i["postmortem_id"], i["key"]) for i in early] == [
        ("pm-test-2", KEYS[0]),
        ("pm-test-2", KEYS[1]),
    ]


def test_an_imported_postmortems_items_are_due_from_its_date(api: Api) -> None:
    import_pm(api, pm_body())  # dated 2025-04-02: history, not new work
    items = api.get("/v1/action-items", params={"postmortem_id": "pm-test-1"}).json()["items"]
    assert [(i["key"], i["due_on"], i["due_set"], i["overdue"]) for i in items] == [
        (KEYS[0], "2025-05-02", False, True),  # should: 30 days
        (KEYS[1], "2025-04-16", False, True),  # must: 14 days
        (KEYS[2], "2025-05-02", False, False),  # done
    ]
    assert api.get("/v1/action-items/overdue-count").json()["overdue"] == 2
    late = api.get("/v1/action-items", params={"overdue": "true"}).json()["items"]
    assert [i["key"] for i in late] == [KEYS[0], KEYS[1]]
    # A reviewer's date wins over the default; a later import keeps it.
    patch(api, f"/v1/action-items/pm-test-1/{KEYS[1]}", json={"due_on": "2031-01-01"})
    import_pm(api, pm_body(summary="Edited after the fact."))
    assert _item(api, KEYS[1])["overdue"] is False
    assert api.get("/v1/action-items/overdue-count").json()["overdue"] == 1


def test_hostile_updates_are_refused_as_problems(api: Api) -> None:
    import_pm(api, recent())
    path = f"/v1/action-items/pm-test-1/{KEYS[0]}"
    for body in (
        {"due_on": "2026-02-30"},
        {"due_on": "yesterday"},
        {"due_on": "1969-12-31"},
        {"due_on": "2201-01-01"},
        {"due_on": 1_700_000_000},
        {"tracker_url": "javascript:alert(document.cookie)"},
        {"tracker_url": "JAVASCRIPT://tracker.example/%0Aalert(1)"},
        {"tracker_url": "data:text/html,<script>alert(1)</script>"},
        {"tracker_url": "https://tracker.example/" + "x" * 2_000},
        {"tracker_url": "https://user:secret@tracker.example/1"},
        {"tracker_key": "x" * 10_000},
        {"tracker_key": "OPS-1\n<script>"},
        {"status": None},
        {"status": "done", "note": "x"},
        {},
    ):
        problem = assert_problem(patch(api, path, json=body), 422)
        assert problem["errors"], body
    assert api.get(f"{path}/history").json()["items"] == []
    assert_problem(
        patch(api, "/v1/action-items/pm-test-1/0123456789ab", json={"status": "done"}), 404
    )
    assert_problem(patch(api, "/v1/action-items/nope/" + KEYS[0], json={"status": "done"}), 404)
    assert_problem(patch(api, "/v1/action-items/pm-test-1/" + "a" * 5_000, json={}), 422)
    assert_problem(patch(api, path, Role.ENGINEER, json={"status": "done"}), 403)
    assert_problem(api.get("/v1/action-items/pm-test-1/0123456789ab/history"), 404)
    assert_problem(api.get(f"{path}/history", params={"cursor": "!!"}), 400)
    assert_problem(api.get("/v1/action-items", params={"due_before": "1900-01-01"}), 400)
    assert_problem(api.get("/v1/action-items", params={"due_before": "soon"}), 422)
    assert_problem(api.get("/v1/action-items", params={"overdue": "maybe"}), 422)


def _board(api: Api, **params: Any) -> str:
    signed = api.client.post(
        "/ui/sign-in", data={"api_key": api.keys[Role.REVIEWER]}, follow_redirects=False
    )
    assert signed.status_code == 303
    page = api.client.get("/ui/action-items", params=params)
    assert page.status_code == 200, page.text[:300]
    return page.text


def test_the_board_shows_due_dates_overdue_items_and_tracker_issues(api: Api) -> None:
    import_pm(api, recent())
    patch(api, f"/v1/action-items/pm-test-1/{KEYS[0]}", json={"due_on": "2020-01-31"})
    patch(
        api,
        f"/v1/action-items/pm-test-1/{KEYS[0]}",
        json={"tracker_key": "OPS-<b>1</b>", "tracker_url": "https://tracker.example/OPS-1"},
    )
    patch(api, f"/v1/action-items/pm-test-1/{KEYS[1]}", json={"tracker_key": "OPS-2"})
    board = _board(api)
    assert "<strong>1</strong> overdue" in board
    assert board.count('class="badge status-failed overdue"') == 1
    assert "due 2020-01-31<" in board and "(default)" in board
    assert '<a href="https://tracker.example/OPS-1" rel="noopener noreferrer nofollow">' in board
    assert "OPS-&lt;b&gt;1&lt;/b&gt;" in board and "<b>1</b>" not in board
    assert '<span class="tracker">OPS-2</span>' in board  # no URL: text, not a link
    assert f'action="/ui/action-items/pm-test-1/{KEYS[0]}"' in board
    only = html.unescape(_board(api, overdue="true"))
    assert TEXTS[0] in only and TEXTS[1] not in only


def _follow_up(api: Api, key: str, **fields: str) -> Any:
    board = _board(api)
    csrf = re.search(r'name="csrf" value="([^"]+)"', board)
    assert csrf is not None
    return api.client.post(
        f"/ui/action-items/pm-test-1/{key}/follow-up",
        data={"csrf": csrf.group(1), **fields},
        follow_redirects=False,
    )


def test_a_reviewer_sets_due_date_and_tracker_issue_on_the_board(api: Api) -> None:
    import_pm(api, recent())
    form = {"due_on": "2031-05-01", "tracker_key": "OPS-7", "tracker_url": "https://t.example/7"}
    saved = _follow_up(api, KEYS[0], **form)
    assert saved.status_code == 303 and saved.headers["location"] == "/ui/action-items"
    row = _item(api, KEYS[0])
    assert (row["due_on"], row["due_set"], row["tracker_key"], row["tracker_url"]) == (
        "2031-05-01",
        True,
        "OPS-7",
        "https://t.example/7",
    )
    board = _board(api)
    assert 'value="2031-05-01"' in board and 'value="OPS-7"' in board
    history = api.get(f"/v1/action-items/pm-test-1/{KEYS[0]}/history").json()["items"]
    assert {h["actor"] for h in history} == {"test reviewer"}
    # Empty fields: the default due date again, no tracker issue.
    assert _follow_up(api, KEYS[0], due_on="", tracker_key="", tracker_url="").status_code == 303
    cleared = _item(api, KEYS[0])
    assert cleared["due_set"] is False and cleared["tracker_key"] is None


def test_bad_follow_up_forms_are_refused_and_change_nothing(api: Api) -> None:
    import_pm(api, recent())
    before = _item(api, KEYS[1])
    for fields in (
        {"tracker_url": "javascript:alert(1)"},
        {"due_on": "2020-13-01"},
        {"due_on": "1900-01-01"},
        {"tracker_key": "OPS-1\nInjected: header"},
    ):
        refused = _follow_up(api, KEYS[1], **fields)
        assert refused.status_code == 400, (fields, refused.text[:200])
        assert "That follow-up was not saved" in refused.text
    assert _follow_up(api, "nosuchkey", due_on="2031-01-01").status_code == 404
    no_csrf = api.client.post(
        f"/ui/action-items/pm-test-1/{KEYS[1]}/follow-up", data={"due_on": "2031-01-01"}
    )
    assert no_csrf.status_code in (403, 422)
    engineer = api.client.post(
        "/ui/sign-in", data={"api_key": api.keys[Role.ENGINEER]}, follow_redirects=False
    )
    assert engineer.status_code == 303
    page = api.client.get("/ui/action-items").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None and "/follow-up" not in page  # no form for an engineer
    as_engineer = api.client.post(
        f"/ui/action-items/pm-test-1/{KEYS[1]}/follow-up",
        data={"csrf": token.group(1), "due_on": "2031-01-01"},
    )
    assert as_engineer.status_code == 403
    assert _item(api, KEYS[1]) == before
