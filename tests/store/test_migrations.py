"""Migrations on both back ends: from an empty database and from every earlier revision up to
the head, and down to nothing and up again, each ending in the schema the code declares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect

from rca.config import Settings
from rca.store.engine import MIGRATIONS_DIR, metadata

pytestmark = pytest.mark.empty_database


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


REVISIONS = [
    s.revision for s in reversed(list(ScriptDirectory.from_config(_config()).walk_revisions()))
]
"""Every revision, oldest first."""


@pytest.fixture
def conn(settings: Settings) -> Iterator[Connection]:
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.effective_database_url())
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _migrate(conn: Connection, step: str, to: str) -> None:
    cfg = _config()
    cfg.attributes["connection"] = conn
    getattr(command, step)(cfg, to)
    conn.commit()


def _at_head(conn: Connection) -> None:
    assert MigrationContext.configure(conn).get_current_revision() == REVISIONS[-1]
    assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_the_revisions_form_one_line() -> None:
    assert REVISIONS[0] == "0001" and len(REVISIONS) == len(set(REVISIONS))
    assert ScriptDirectory.from_config(_config()).get_heads() == [REVISIONS[-1]]


@pytest.mark.parametrize("start", ["empty", *REVISIONS[:-1]])
def test_upgrading_to_the_head_gives_the_declared_schema(conn: Connection, start: str) -> None:
    if start != "empty":
        _migrate(conn, "upgrade", start)
    _migrate(conn, "upgrade", "head")
    _at_head(conn)


def test_downgrading_to_nothing_and_back_gives_the_declared_schema(conn: Connection) -> None:
    _migrate(conn, "upgrade", "head")
    _migrate(conn, "downgrade", "base")
    assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    _migrate(conn, "upgrade", "head")
    _at_head(conn)


def test_the_revision_counter_starts_at_the_revisions_already_stored(settings: Settings) -> None:
    from sqlalchemy import text

    from rca.domain import Postmortem
    from rca.store import Store
    from rca.store.integrity import check
    from tests.factories import postmortem_data

    store = Store.open(settings)
    try:
        for n, summary in enumerate(("First.", "Second.", "Third.")):
            data = postmortem_data(id=f"pm-{n % 2}", summary=summary)
            store.save_postmortem(Postmortem.model_validate(data), source="test")
        assert store.fingerprint() == "3"  # pm-0 twice, pm-1 once
        with store.engine.connect() as conn:  # as a store of the revision before the counter
            _migrate(conn, "downgrade", "0015")
            assert "store_counters" not in inspect(conn).get_table_names()
            _migrate(conn, "upgrade", "head")
            seeded = conn.execute(
                text("SELECT value FROM store_counters WHERE name = 'postmortem_revisions'")
            ).scalar_one()
        assert seeded == 3 and store.fingerprint() == "3" and check(store.engine) == []
        store.save_postmortem(Postmortem.model_validate(postmortem_data(id="pm-2")), "test")
        assert store.fingerprint() == "4"
    finally:
        store.close()
