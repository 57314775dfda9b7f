"""The postmortem, search, action-item and admin endpoints through the real app."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rca.domain import Postmortem
from rca.formats.importer import parse_markdown_postmortem
from rca.store import audit
from rca.store.keys import Role
from tests.api.support import ROOT, Api

PROBLEM = "application/problem+json"
EXAMPLES = sorted((ROOT / "examples" / "postmortems").glob("*.md"))


def patch(api: Api, path: str, role: Role | None = Role.REVIEWER, **kw: Any) -> Any:
    return api.client.patch(path, headers=api.headers(role, **kw.pop("headers", {})), **kw)


def delete(api: Api, path: str, role: Role | None = Role.ADMIN) -> Any:
    return api.client.delete(path, headers=api.headers(role))


def pm_body(ident: str = "pm-test-1", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": ident,
        "title": "Checkout errors after a connection pool change",
        "date": "2025-04-02",
        "severity": "SEV2",
        "services": ["checkout-api", "orders-db"],
        "summary": "A smaller connection pool made checkout time out for 20 minutes.",
        "root_causes": ["Pool size changes were not load tested."],
        "action_items": [
            {"text": "Load test pool changes", "kind": "prevent", "owner": "Platform"},
            {"text": "Alert on pool saturation", "kind": "detect", "priority": "must"},
            {"text": "Document the rollback", "kind": "process", "status": "done"},
        ],
    }
    return {**body, **changes}


def import_pm(api: Api, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = api.post("/v1/postmortems", Role.REVIEWER, json=body)
    assert response.status_code == status, response.text
    return dict(response.json())


def examples() -> list[Postmortem]:
    return [parse_markdown_postmortem(path.read_text(), str(path)) for path in EXAMPLES]


def import_examples(api: Api) -> list[Postmortem]:
    found = examples()
    for pm in found:
        import_pm(api, pm.model_dump(mode="json"))
    return found


def all_pages(api: Api, path: str, role: Role = Role.ENGINEER, **params: Any) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page = api.get(path, role, params={**params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = dict(response.json())
    assert body["status"] == status
    return body


# --- import, get, revisions ----------------------------------------------------------------


def test_import_then_revise_then_get_each_revision(api: Api) -> None:
    created = api.post("/v1/postmortems", Role.REVIEWER, json=pm_body())
    assert created.status_code == 201
    assert created.json() == {"id": "pm-test-1", "revision": 1, "outcome": "created"}
    assert created.headers["location"] == "/v1/postmortems/pm-test-1"
    same = import_pm(api, pm_body(), status=200)
    assert same == {"id": "pm-test-1", "revision": 1, "outcome": "unchanged"}
    revised = import_pm(api, pm_body(summary="A smaller pool made checkout time out."))
    assert revised == {"id": "pm-test-1", "revision": 2, "outcome": "revised"}

    latest = api.get("/v1/postmortems/pm-test-1").json()
    assert (latest["revision"], latest["latest_revision"]) == (2, 2)
    assert latest["postmortem"]["summary"] == "A smaller pool made checkout time out."
    assert latest["source"].startswith("api:")
    first = api.get("/v1/postmortems/pm-test-1", params={"revision": 1}).json()
    assert (first["revision"], first["latest_revision"]) == (1, 2)
    assert Postmortem.model_validate(first["postmortem"]) == Postmortem.model_validate(pm_body())
    items = first["action_items"]
    assert [(i["item"], i["status"], i["updated_by"]) for i in items] == [
        (0, "open", None),
        (1, "open", None),
        (2, "done", None),
    ]
    assert items[1]["priority"] == "must" and items[0]["owner"] == "Platform"

    assert_problem(api.get("/v1/postmortems/pm-test-1", params={"revision": 3}), 404)
    assert_problem(api.get("/v1/postmortems/nope"), 404)
    for huge in (2**31, 2**63):  # past what a revision column holds: no such revision
        for path in ("/v1/postmortems/pm-test-1", "/v1/postmortems/nope/export"):
            assert_problem(api.get(path, params={"revision": huge}), 404)
    assert api.get("/v1/postmortems/pm-test-1", params={"revision": 0}).status_code == 422
    trail = audit.entries(api.services.store.engine, "postmortem", "pm-test-1")
    assert [(e.action, e.actor, e.detail["revision"]) for e in trail] == [
        ("postmortem.created", "test reviewer", 1),
        ("postmortem.revised", "test reviewer", 2),
    ]


def test_import_with_an_idempotency_key_replays_and_refuses_another_body(api: Api) -> None:
    headers = {"Idempotency-Key": "import-1"}
    first = api.post("/v1/postmortems", Role.REVIEWER, json=pm_body(), headers=headers)
    again = api.post("/v1/postmortems", Role.REVIEWER, json=pm_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = api.post("/v1/postmortems", Role.REVIEWER, json=pm_body(title="x"), headers=headers)
    assert_problem(other, 422)
    assert api.services.store.revisions("pm-test-1")[-1].revision == 1


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"summary": " "}, "body.summary"),
        ({"severity": "SEV9"}, "body.severity"),
        ({"surprise": 1}, "body.surprise"),
        ({"id": "bad id with spaces"}, "body.id"),
        ({"action_items": [{"text": "x", "kind": "nonsense"}]}, "body.action_items.0.kind"),
        ({"title": "t" * 4_001}, "body.title"),
    ],
)
def test_a_bad_postmortem_is_a_422_problem_and_stores_nothing(
    api: Api, change: dict[str, Any], location: str
) -> None:
    body = assert_problem(api.post("/v1/postmortems", Role.REVIEWER, json=pm_body(**change)), 422)
    assert location in {e["location"] for e in body["errors"]}
    assert api.get("/v1/postmortems").json()["items"] == []


def test_a_body_that_is_not_json_is_a_422_problem(api: Api) -> None:
    response = api.post(
        "/v1/postmortems",
        Role.REVIEWER,
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 422)


# --- roles -----------------------------------------------------------------------------------


def test_engineers_cannot_import_or_update_and_only_admins_reach_admin(api: Api) -> None:
    assert_problem(api.post("/v1/postmortems", Role.ENGINEER, json=pm_body()), 403)
    import_pm(api, pm_body())
    update = {"status": "done"}
    assert_problem(patch(api, "/v1/action-items/pm-test-1/0", Role.ENGINEER, json=update), 403)
    for role in (Role.ENGINEER, Role.REVIEWER):
        assert_problem(api.get("/v1/admin/keys", role), 403)
        assert_problem(api.post("/v1/admin/keys", role, json={"name": "x", "role": "admin"}), 403)
        assert_problem(delete(api, "/v1/admin/keys/abc", role), 403)
        assert_problem(api.post("/v1/admin/index/sync", role), 403)
        assert_problem(api.post("/v1/admin/index/check", role), 403)
    for path in ("/v1/postmortems", "/v1/action-items", "/v1/search/similar?q=pool"):
        assert api.get(path, Role.ENGINEER).status_code == 200
        assert_problem(api.get(path, None), 401)
    assert_problem(delete(api, "/v1/admin/keys/abc", None), 401)


# --- listing ---------------------------------------------------------------------------------


def test_list_pages_newest_first_without_duplicates_and_filters(api: Api) -> None:
    pms = import_examples(api)
    for n in range(3):  # undated ones come last
        import_pm(api, pm_body(f"pm-undated-{n}", date=None))
    listed = all_pages(api, "/v1/postmortems", limit=4)  # a cursor lands on an undated one
    ids = [item["id"] for item in listed]
    assert len(ids) == len(pms) + 3 and len(set(ids)) == len(ids)
    newest = sorted(pms, key=lambda pm: (-pm.date.toordinal() if pm.date else 0, pm.id))
    expected = [pm.id for pm in newest]
    assert ids == [*expected, "pm-undated-0", "pm-undated-1", "pm-undated-2"]
    first = listed[0]
    assert set(first) == {"id", "title", "date", "severity", "latest_revision", "updated_at"}

    sev1 = all_pages(api, "/v1/postmortems", severity="SEV1", limit=3)
    assert {i["id"] for i in sev1} == {pm.id for pm in pms if pm.severity == "SEV1"}
    checkout = all_pages(api, "/v1/postmortems", service="checkout-api", limit=4)
    assert [i["id"] for i in checkout] == [
        i for i in expected if "checkout-api" in next(p.services for p in pms if p.id == i)
    ] + [f"pm-undated-{n}" for n in range(3)]
    either = api.get("/v1/postmortems", params={"service": ["auth-service", "edge-proxy"]})
    wanted = {pm.id for pm in pms if {"auth-service", "edge-proxy"} & set(pm.services)}
    assert {i["id"] for i in either.json()["items"]} == wanted
    in_2024 = all_pages(api, "/v1/postmortems", since="2024-01-01", until="2024-12-31")
    assert {i["id"] for i in in_2024} == {pm.id for pm in pms if pm.date and pm.date.year == 2024}
    word = pms[0].title.split()[1]
    titled = api.get("/v1/postmortems", params={"q": word.upper(), "limit": 100}).json()
    assert {i["id"] for i in titled["items"]} == {
        pm.id for pm in pms if word.lower() in pm.title.lower()
    }
    assert api.get("/v1/postmortems", params={"q": "100%_"}).json()["items"] == []

    assert_problem(api.get("/v1/postmortems", params={"cursor": "!!"}), 400)
    assert_problem(api.get("/v1/postmortems", params={"cursor": "bm90LWEtZGF0ZR9wbQ"}), 400)
    assert_problem(api.get("/v1/postmortems", params={"since": "2025-01-02", "until": "2025"}), 422)
    assert_problem(
        api.get("/v1/postmortems", params={"since": "2025-01-02", "until": "2025-01-01"}), 400
    )
    assert_problem(api.get("/v1/postmortems", params={"limit": 101}), 422)
    assert_problem(api.get("/v1/postmortems", params={"severity": "SEV9"}), 422)
    assert_problem(api.get("/v1/postmortems", params={"service": "x" * 101}), 400)


# --- export ----------------------------------------------------------------------------------


def test_export_markdown_and_json_round_trip(api: Api) -> None:
    pm = examples()[0]
    import_pm(api, pm.model_dump(mode="json"))
    as_json = api.get(f"/v1/postmortems/{pm.id}/export", params={"format": "json"})
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    assert as_json.headers["content-disposition"] == f'attachment; filename="{pm.id}.json"'
    assert Postmortem.model_validate(as_json.json()) == pm
    assert None not in as_json.json().values()  # the interchange format leaves absent out
    as_md = api.get(f"/v1/postmortems/{pm.id}/export")
    assert as_md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert as_md.headers["content-disposition"] == f'attachment; filename="{pm.id}.md"'
    assert parse_markdown_postmortem(as_md.text, "export.md") == pm
    # What was exported imports again unchanged.
    import_pm(api, as_json.json(), status=200)

    import_pm(api, pm_body())
    small = api.get("/v1/postmortems/pm-test-1/export", params={"format": "json"}).json()
    assert Postmortem.model_validate(small) == Postmortem.model_validate(pm_body())
    assert_problem(api.get("/v1/postmortems/nope/export"), 404)
    assert_problem(api.get(f"/v1/postmortems/{pm.id}/export", params={"format": "pdf"}), 422)
    assert_problem(api.get(f"/v1/postmortems/{pm.id}/export", params={"revision": 9}), 404)


# --- search ----------------------------------------------------------------------------------


def test_free_text_similar_search_with_filters(api: Api) -> None:
    pms = import_examples(api)
    target = next(pm for pm in pms if pm.id == "pm-2023-09-orders-db-failover")
    response = api.get("/v1/search/similar", params={"q": target.summary, "k": 3})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["query"] == target.summary and result["mode"] == "hybrid"
    assert len(result["hits"]) == 3 and result["hits"][0]["postmortem_id"] == target.id
    lexical = api.get(
        "/v1/search/similar",
        params={"q": "certificate expired", "mode": "lexical", "severity": "SEV1", "k": 50},
    ).json()
    assert lexical["mode"] == "lexical" and lexical["hits"]
    assert {h["severity"] for h in lexical["hits"]} == {"SEV1"}
    only = api.get(
        "/v1/search/similar", params={"q": "disk full", "service": "kafka", "k": 50}
    ).json()
    assert all("kafka" in h["services"] for h in only["hits"])
    dated = api.get(
        "/v1/search/similar", params={"q": "outage", "since": "2025-01-01", "k": 50}
    ).json()
    assert dated["hits"] and all(h["date"] >= "2025-01-01" for h in dated["hits"])

    assert_problem(api.get("/v1/search/similar"), 422)
    assert_problem(api.get("/v1/search/similar", params={"q": ""}), 422)
    assert_problem(api.get("/v1/search/similar", params={"q": "?!"}), 400)
    assert_problem(api.get("/v1/search/similar", params={"q": "db", "k": 51}), 422)
    assert_problem(api.get("/v1/search/similar", params={"q": "db", "mode": "magic"}), 422)
    span = {"q": "db", "since": "2025-02-01", "until": "2025-01-01"}
    assert_problem(api.get("/v1/search/similar", params=span), 400)


# --- action items ----------------------------------------------------------------------------


def test_an_action_item_status_update_shows_everywhere_and_is_audited(api: Api) -> None:
    import_pm(api, pm_body())
    updated = patch(api, "/v1/action-items/pm-test-1/1", json={"status": "in_progress"})
    assert updated.status_code == 200, updated.text
    row = updated.json()
    assert row["item"] == 1 and row["status"] == "in_progress"
    assert row["text"] == "Alert on pool saturation" and row["updated_by"] == "test reviewer"
    assert row["postmortem_id"] == "pm-test-1" and row["updated_at"] is not None

    got = api.get("/v1/postmortems/pm-test-1").json()
    assert got["postmortem"]["action_items"][1]["status"] == "in_progress"
    assert got["action_items"][1] == row
    listed = api.get("/v1/action-items", params={"status": "in_progress"}).json()["items"]
    assert listed == [row]
    still_open = api.get("/v1/action-items", params={"status": "open"}).json()["items"]
    assert [i["item"] for i in still_open] == [0]
    exported = api.get("/v1/postmortems/pm-test-1/export", params={"format": "json"}).json()
    assert exported["action_items"][1]["status"] == "in_progress"

    # The same status again changes nothing; the revision itself never changed.
    assert patch(api, "/v1/action-items/pm-test-1/1", json={"status": "in_progress"}).json() == row
    assert patch(api, "/v1/action-items/pm-test-1/1", json={"status": "done"}).status_code == 200
    stored = api.services.store.get_postmortem("pm-test-1")
    assert stored.revision == 1 and stored.postmortem.action_items[1].status == "open"
    trail = audit.entries(api.services.store.engine, "postmortem", "pm-test-1")
    changes = [e for e in trail if e.action == "action_item.status_changed"]
    assert [(e.actor, e.detail) for e in changes] == [
        ("test reviewer", {"item": 1, "status": "in_progress", "previous": "open"}),
        ("test reviewer", {"item": 1, "status": "done", "previous": "in_progress"}),
    ]

    # A new revision keeps the tracked status; the old one shows what was recorded.
    import_pm(api, pm_body(summary="Revised summary of the pool change."))
    assert api.get("/v1/postmortems/pm-test-1").json()["action_items"][1]["status"] == "done"
    old = api.get("/v1/postmortems/pm-test-1", params={"revision": 1}).json()
    assert old["action_items"][1]["status"] == "open"


def test_action_item_updates_refuse_unknown_targets_and_bad_bodies(api: Api) -> None:
    import_pm(api, pm_body())
    assert_problem(patch(api, "/v1/action-items/pm-test-1/3", json={"status": "done"}), 404)
    assert_problem(patch(api, "/v1/action-items/nope/0", json={"status": "done"}), 404)
    assert_problem(patch(api, "/v1/action-items/pm-test-1/-1", json={"status": "done"}), 422)
    assert_problem(patch(api, "/v1/action-items/pm-test-1/x", json={"status": "done"}), 422)
    for body in ({"status": "finished"}, {"status": "done", "note": "x"}, {}, [], None):
        response = assert_problem(patch(api, "/v1/action-items/pm-test-1/0", json=body), 422)
        assert response["errors"]
    assert api.get("/v1/action-items", params={"status": "done"}).json()["items"][0]["item"] == 2


def test_action_items_list_pages_across_postmortems_and_filters(api: Api) -> None:
    pms = import_examples(api)
    by_id = sorted(pms, key=lambda pm: pm.id)
    expected = [(pm.id, n, item) for pm in by_id for n, item in enumerate(pm.action_items)]
    assert len(expected) > 100  # more than the largest page
    listed = all_pages(api, "/v1/action-items", limit=100)
    keys = [(i["postmortem_id"], i["item"]) for i in listed]
    assert keys == [(pid, n) for pid, n, _ in expected] and len(set(keys)) == len(keys)
    assert len(all_pages(api, "/v1/action-items", limit=7)) == len(expected)
    first = listed[0]
    pm = next(p for p in pms if p.id == first["postmortem_id"])
    assert first["postmortem_title"] == pm.title and first["text"] == pm.action_items[0].text

    def ids(**params: Any) -> list[tuple[str, int]]:
        return [
            (i["postmortem_id"], i["item"]) for i in all_pages(api, "/v1/action-items", **params)
        ]

    def where(test: Any) -> list[tuple[str, int]]:
        return [(pid, n) for pid, n, item in expected if test(item)]

    assert ids(status="open", limit=5) == where(lambda i: i.status == "open")
    assert ids(status=["open", "in_progress"]) == where(
        lambda i: i.status in ("open", "in_progress")
    )
    assert ids(owner="PLATFORM", limit=3) == where(lambda i: (i.owner or "").lower() == "platform")
    assert ids(kind="detect", priority="must") == where(
        lambda i: i.kind == "detect" and i.priority == "must"
    )
    one = pms[3].id
    assert ids(postmortem_id=one, limit=2) == [(one, n) for n in range(len(pms[3].action_items))]
    assert ids(postmortem_id="nope") == []

    assert_problem(api.get("/v1/action-items", params={"cursor": "!!"}), 400)
    not_a_number = "cG0tMR94"  # "pm-1\x1fx"
    assert_problem(api.get("/v1/action-items", params={"cursor": not_a_number}), 400)
    assert_problem(api.get("/v1/action-items", params={"limit": 0}), 422)
    assert_problem(api.get("/v1/action-items", params={"status": "closed"}), 422)


# --- admin -----------------------------------------------------------------------------------


def test_admin_creates_lists_and_revokes_keys(api: Api) -> None:
    created = api.post("/v1/admin/keys", Role.ADMIN, json={"name": "ci bot", "role": "engineer"})
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    key = created.json()
    assert key["key"].startswith(f"rca_{key['id']}_") and key["role"] == "engineer"
    assert key["active"] is True and key["expires_at"] is None and key["revoked_at"] is None
    new = {"Authorization": f"Bearer {key['key']}"}
    assert api.client.get("/v1/postmortems", headers=new).status_code == 200
    assert api.client.post("/v1/postmortems", headers=new, json=pm_body()).status_code == 403

    listed = api.get("/v1/admin/keys", Role.ADMIN).json()
    mine = next(k for k in listed if k["id"] == key["id"])
    assert mine == {k: v for k, v in key.items() if k != "key"}
    assert key["key"] not in json.dumps(listed) and "secret_hash" not in json.dumps(listed)

    revoked = delete(api, f"/v1/admin/keys/{key['id']}")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert revoked.json()["revoked_at"] is not None
    assert_problem(api.client.get("/v1/postmortems", headers=new), 401)
    assert delete(api, f"/v1/admin/keys/{key['id']}").status_code == 200  # again: no change
    assert_problem(delete(api, "/v1/admin/keys/000000000000"), 404)

    expiring = api.post(
        "/v1/admin/keys", Role.ADMIN, json={"name": "temp", "role": "reviewer", "expires_days": 7}
    ).json()
    assert expiring["expires_at"] is not None
    for body in (
        {"name": "x", "role": "god"},
        {"name": "", "role": "admin"},
        {"name": "x", "role": "admin", "expires_days": 0},
        {"name": "x", "role": "admin", "secret": "mine"},
        {"role": "admin"},
    ):
        assert_problem(api.post("/v1/admin/keys", Role.ADMIN, json=body), 422)
    assert_problem(api.post("/v1/admin/keys", Role.ADMIN, json={"name": " ", "role": "admin"}), 400)


def test_admin_syncs_and_checks_the_index(api: Api) -> None:
    pms = import_examples(api)[:3]
    synced = api.post("/v1/admin/index/sync", Role.ADMIN)
    assert synced.status_code == 200, synced.text
    report = synced.json()
    assert report["postmortems"] == len(examples()) and report["chunks"] > 0
    again = api.post("/v1/admin/index/sync", Role.ADMIN).json()
    assert again == {"postmortems": 0, "chunks": 0, "rebuilt": False}
    checked = api.post("/v1/admin/index/check", Role.ADMIN).json()
    assert checked["in_sync"] is True and checked["repaired"] is False
    assert checked["expected_chunks"] == checked["indexed_chunks"] == report["chunks"]
    # Drift: a new revision not yet synced is found (stale) and repaired.
    import_pm(api, {**pms[0].model_dump(mode="json"), "summary": "Rewritten summary."})
    dry = api.post("/v1/admin/index/check", Role.ADMIN, params={"repair": False}).json()
    assert (dry["in_sync"], dry["stale"], dry["stale_ids"]) == (False, 1, [pms[0].id])
    fixed = api.post("/v1/admin/index/check", Role.ADMIN).json()
    assert fixed["repaired"] is True
    assert api.post("/v1/admin/index/check", Role.ADMIN).json()["in_sync"] is True
