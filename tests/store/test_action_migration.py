"""Migration 0009: action items become rows by key, with the statuses tracked by position and
their audit trail as history; nothing tracked before is lost, and a downgrade writes back."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, text

from rca.config import Settings
from rca.domain import ActionStatus, Postmortem, canonical_json
from rca.store import Store
from rca.store.action_rules import item_keys
from rca.store.engine import MIGRATIONS_DIR
from tests.factories import postmortem_data

A = {"text": "Cache templates per worker", "kind": "prevent", "priority": "must"}
B = {"text": "Alert on consumer lag", "kind": "detect", "priority": "should"}
C = {"text": "Load-test template fetches", "kind": "process", "priority": "could"}
KEY_A, KEY_B, KEY_C = item_keys([A["text"], B["text"], C["text"]])


def _config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


def _postmortem(conn: Connection, ident: str, revisions: list[tuple[list[Any], datetime]]) -> None:
    conn.execute(
        text(
            "INSERT INTO postmortems (id, latest_revision, title, date, created_at, updated_at)"
            " VALUES (:id, :n, 't', '2026-01-01', :first, :last)"
        ),
        {"id": ident, "n": len(revisions), "first": revisions[0][1], "last": revisions[-1][1]},
    )
    for n, (items, at) in enumerate(revisions, start=1):
        pm = Postmortem.model_validate(postmortem_data(id=ident, action_items=items))
        conn.execute(
            text(
                "INSERT INTO postmortem_revisions (postmortem_id, revision, content_hash,"
                " document, source, created_at) VALUES (:id, :n, :h, :doc, 'import', :at)"
            ),
            {"id": ident, "n": n, "h": f"h{n}", "doc": canonical_json(pm), "at": at},
        )


def _tracked(conn: Connection, ident: str, item: int, status: str, who: str, at: Any) -> None:
    conn.execute(
        text("INSERT INTO action_status VALUES (:id, :item, :status, :who, :at)"),
        {"id": ident, "item": item, "status": status, "who": who, "at": at},
    )


def _rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


@pytest.mark.empty_database
def test_the_migration_keeps_every_tracked_status_by_key(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.effective_database_url())
    jan, feb = datetime(2026, 1, 1, 9), datetime(2026, 2, 1, 9)
    with engine.connect() as conn:
        command.upgrade(_config(conn), "0008")
        conn.commit()
        # Revision 2 reorders revision 1's items and adds one.
        _postmortem(conn, "pm-a", [([A, B], jan), ([B, A, C], feb)])
        _postmortem(conn, "pm-b", [([A], jan)])
        _tracked(conn, "pm-a", 0, "done", "alice", datetime(2026, 2, 2))  # B, by position
        _tracked(conn, "pm-a", 7, "in_progress", "bob", datetime(2026, 2, 3))  # no such item
        _tracked(conn, "pm-b", 0, "wont_do", "carol", datetime(2026, 1, 5))  # no audit entry
        detail = json.dumps({"item": 0, "previous": "open", "status": "done"})
        conn.execute(
            text(
                "INSERT INTO audit_log (at, actor, action, target_type, target_id, detail)"
                " VALUES (:at, 'alice', 'action_item.status_changed', 'postmortem', 'pm-a', :d)"
            ),
            {"at": datetime(2026, 2, 2), "d": detail},
        )
        conn.commit()
    engine.dispose()

    store = Store.open(settings)  # migrates to the head
    rows = {r.key: r for r in store.action_item_page(10, postmortem_id="pm-a")}
    assert [(k, r.item, r.action.status, r.updated_by) for k, r in rows.items()] == [
        (KEY_B, 0, ActionStatus.DONE, "alice"),
        (KEY_A, 1, ActionStatus.OPEN, None),
        (KEY_C, 2, ActionStatus.OPEN, None),
    ]
    # Each is due from the day it first appeared: A and B in January, C in February.
    assert rows[KEY_A].due_on == date(2026, 1, 15) and rows[KEY_B].due_on == date(2026, 1, 31)
    assert rows[KEY_C].due_on == date(2026, 5, 2)
    assert rows[KEY_B].closed_at == datetime(2026, 2, 2, tzinfo=UTC)
    history = store.action_history("pm-a", KEY_B, 10)
    assert [(h.actor, h.field, h.old, h.new) for h in history] == [
        ("alice", "status", "open", "done")
    ]
    carol = store.action_history("pm-b", KEY_A, 10)
    assert [(h.actor, h.old, h.new, h.at) for h in carol] == [
        ("carol", "open", "wont_do", datetime(2026, 1, 5, tzinfo=UTC))
    ]
    # action_status is kept as it was: the status of a position no revision has included.
    assert len(_rows(store, "SELECT * FROM action_status")) == 3

    # A status set since is written back by position on a downgrade, and comes back up.
    store.set_action_status("pm-a", KEY_C, ActionStatus.IN_PROGRESS, "dave")
    store.close()
    engine = create_engine(settings.effective_database_url())
    with engine.connect() as conn:
        command.downgrade(_config(conn), "0008")
        conn.commit()
        back = conn.execute(
            text("SELECT status, updated_by FROM action_status WHERE item = 2")
        ).all()
        assert [tuple(r) for r in back] == [("in_progress", "dave")]
    engine.dispose()
    store = Store.open(settings)
    again = store.action_item_page(10, postmortem_id="pm-a")
    assert [r.action.status.value for r in again] == ["done", "open", "in_progress"]
    store.close()
