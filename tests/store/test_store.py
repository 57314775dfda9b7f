"""The system of record: revisions, immutability, atomic writes, durability settings."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

import rca.store.incident_records
from rca.config import Settings
from rca.domain import Incident, Postmortem
from rca.errors import NotFound
from rca.store import Outcome, Store
from rca.store.engine import metadata, read_transaction, write_transaction
from tests.factories import incident_data, postmortem_data
from tests.support import dump


def test_the_migrated_schema_matches_the_tables_in_code(store: Store) -> None:
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


@pytest.mark.sqlite_only
def test_sqlite_is_configured_for_durability(store: Store) -> None:
    with store.engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }


@pytest.mark.sqlite_only
def test_the_database_lives_in_the_data_directory(settings: Settings, store: Store) -> None:
    assert (settings.data_dir / "rca.db").is_file()


def test_same_content_is_unchanged_new_content_is_a_new_revision(store: Store) -> None:
    pm = Postmortem.model_validate(postmortem_data())
    assert store.save_postmortem(pm, "test").outcome is Outcome.CREATED
    assert store.save_postmortem(pm, "test").outcome is Outcome.UNCHANGED
    edited = pm.model_copy(update={"title": "Order emails delayed by 50 minutes"})
    result = store.save_postmortem(edited, "edit")
    assert (result.outcome, result.revision) == (Outcome.REVISED, 2)
    assert store.get_postmortem(pm.id).postmortem == edited
    assert store.get_postmortem(pm.id, 1).postmortem == pm
    assert [r.revision for r in store.revisions(pm.id)] == [1, 2]
    assert store.list_postmortems()[0].title == "Order emails delayed by 50 minutes"
    assert store.counts() == {"incidents": 0, "postmortems": 1, "revisions": 2}


def test_stored_revisions_cannot_be_changed_or_deleted(store: Store) -> None:
    store.save_postmortem(Postmortem.model_validate(postmortem_data()), "test")
    for statement in (
        "UPDATE postmortem_revisions SET document = '{}'",
        "DELETE FROM postmortem_revisions",
    ):
        with pytest.raises(IntegrityError, match="immutable"), store.engine.begin() as conn:
            conn.execute(text(statement))
    assert store.get_postmortem("pm-test-queue-2025").postmortem.title.startswith("Order")


def test_incidents_are_created_updated_and_read_back(store: Store) -> None:
    incident = Incident.model_validate(incident_data())
    assert store.save_incident(incident, "test").outcome is Outcome.CREATED
    assert store.save_incident(incident, "test").outcome is Outcome.UNCHANGED
    changed = incident.model_copy(update={"summary": "More detail"})
    assert store.save_incident(changed, "test").outcome is Outcome.UPDATED
    assert store.get_incident(incident.id) == changed
    assert [i.id for i in store.list_incidents()] == [incident.id]
    with pytest.raises(NotFound, match="incident 'nope' not found"):
        store.get_incident("nope")


def test_a_failure_mid_batch_leaves_nothing_behind(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = dump(store)

    def explode(*_args: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(rca.store.incident_records, "save_incident_in", explode)
    pm = Postmortem.model_validate(postmortem_data())
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.save([pm, Incident.model_validate(incident_data())], "test")
    assert dump(store) == before


def test_a_process_killed_inside_a_write_leaves_nothing_behind(
    settings: Settings, store: Store
) -> None:
    store.save_postmortem(Postmortem.model_validate(postmortem_data()), "test")
    before = dump(store)
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from rca.config import Settings
        from rca.domain import Postmortem
        from rca.store import Store
        from rca.store.postmortem_records import save_postmortem_in
        from rca.store.engine import write_transaction
        from tests.factories import postmortem_data
        store = Store.open(Settings(data_dir=Path({str(settings.data_dir)!r})))
        with write_transaction(store.engine) as conn:
            save_postmortem_in(
                conn, Postmortem.model_validate(postmortem_data(id="pm-new")), "x"
            )
            save_postmortem_in(
                conn, Postmortem.model_validate(postmortem_data(title="half")), "x"
            )
            os._exit(9)  # dies before commit
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parents[2], check=False
    )
    assert proc.returncode == 9
    assert dump(store) == before


def test_a_write_inside_another_joins_it(store: Store) -> None:
    """Nested writes of one engine commit with the outer transaction (no second connection
    waiting for the lock the first holds); a failed inner one undoes only its own writes."""
    before = dump(store)
    incident = Incident.model_validate(incident_data())
    with pytest.raises(RuntimeError), write_transaction(store.engine):
        store.save_incident(incident, "test")
        raise RuntimeError("the outer transaction fails after the inner one finished")
    assert dump(store) == before
    with write_transaction(store.engine):
        with pytest.raises(RuntimeError), write_transaction(store.engine):
            store.save_postmortem(Postmortem.model_validate(postmortem_data()), "test")
            raise RuntimeError("the inner one fails")
        store.save_incident(incident, "test")
    assert store.counts() == {"incidents": 1, "postmortems": 0, "revisions": 0}


def test_concurrent_writers_queue_and_revisions_stay_contiguous(settings: Settings) -> None:
    stores = [Store.open(settings) for _ in range(3)]
    errors: list[BaseException] = []

    def writer(index: int, target: Store) -> None:
        try:
            for n in range(10):
                data = postmortem_data(title=f"writer {index} edit {n}")
                target.save_postmortem(Postmortem.model_validate(data), f"w{index}")
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(i, s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    revisions = [r.revision for r in stores[0].revisions("pm-test-queue-2025")]
    assert revisions == list(range(1, 31))
    for opened in stores:
        opened.close()


def test_reopening_runs_no_migration_twice(settings: Settings) -> None:
    first = Store.open(settings)
    first.save_postmortem(Postmortem.model_validate(postmortem_data()), "test")
    first.close()
    second = Store.open(settings)
    assert second.counts()["postmortems"] == 1
    with second.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0017"
    second.close()


def test_a_search_snapshot_reads_the_fingerprint_the_backlog_and_a_state_value(
    store: Store,
) -> None:
    state = store.index_state
    empty = state.snapshot("active_collection:x")
    assert (empty.fingerprint, empty.pending, empty.value) == ("0", 0, None)
    store.save_postmortem(Postmortem.model_validate(postmortem_data(id="pm-a")), source="test")
    changed = Postmortem.model_validate(postmortem_data(id="pm-a", summary="Changed."))
    store.save_postmortem(changed, source="test")
    store.save_postmortem(Postmortem.model_validate(postmortem_data(id="pm-b")), source="test")
    state.put("active_collection:x", "rca-x-g2")
    snapshot = state.snapshot("active_collection:x")
    assert snapshot.fingerprint == store.fingerprint() == "3"  # revisions 1, 2 of a; 1 of b
    assert snapshot.pending == state.pending_count() == 3
    assert snapshot.value == "rca-x-g2"
    assert state.snapshot("another").value is None


def test_a_read_sees_one_snapshot_on_sqlite_and_each_statement_committed_data_on_postgres(
    store: Store, backend: str
) -> None:
    """SQLite reads run in one transaction (one snapshot); PostgreSQL reads are autocommit
    statements (no BEGIN/COMMIT round trips), each seeing what was committed when it began."""
    store.create_incident(Incident.model_validate(incident_data(id="inc-before")), "test")
    own_transaction = "SELECT statement_timestamp() = transaction_timestamp()"
    with read_transaction(store.engine) as conn:
        first = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
        store.create_incident(Incident.model_validate(incident_data(id="inc-during")), "test")
        second = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
        alone = conn.execute(text(own_transaction)).scalar_one() if backend != "sqlite" else None
    assert first == 1
    if backend == "sqlite":
        assert second == 1  # the snapshot the read's first statement took
    else:
        assert second == 2  # the write committed between the statements
        assert alone is True  # the third statement was a transaction of its own: no BEGIN


def test_the_integrity_check_finds_a_revision_counter_out_of_step(store: Store) -> None:
    from sqlalchemy import text

    from rca.store.integrity import check

    store.save_postmortem(Postmortem.model_validate(postmortem_data(id="pm-a")), source="test")
    assert check(store.engine) == []
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE store_counters SET value = 7 WHERE name = 'postmortem_revisions'")
        )
    problems = check(store.engine)
    assert [p.rule for p in problems] == [
        "the count of postmortem revisions kept (the store's fingerprint) is the number stored"
    ]
    assert problems[0].examples == ("postmortem_revisions = 7",)
