"""Several processes opening one new database at once (an organisation's API servers and
workers starting together): the schema is created once and every process starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from rca.config import Settings
from rca.store import Store
from rca.store.engine import write_transaction

pytestmark = pytest.mark.empty_database

_OPEN = (
    "import sys\n"
    "from rca.config import Settings\n"
    "from rca.store import Store\n"
    "Store.open(Settings(data_dir=sys.argv[1])).close()\n"
    "print('opened')\n"
)


def _start(settings: Settings, **environment: str) -> subprocess.Popen[str]:
    """A process opening the store of `settings` (it prints "opened")."""
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen(
        [sys.executable, "-c", _OPEN, str(settings.data_dir)],
        env={**os.environ, "PYTHONPATH": str(root), **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_four_processes_opening_a_new_database_together_all_start(
    settings: Settings, tmp_path: Path
) -> None:
    settings.data_dir.mkdir(parents=True)
    starts = [_start(settings) for _ in range(4)]
    results = [(p.wait(120), *p.communicate()) for p in starts]
    assert [code for code, _, _ in results] == [0] * 4, [err[-600:] for _, _, err in results]
    engine = create_engine(settings.effective_database_url())
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert len(versions) == 1


@pytest.mark.sqlite_only
def test_a_process_starting_while_another_migrates_slowly_waits_its_turn(
    settings: Settings,
) -> None:
    """Found by the full run: on a loaded machine the first process's migration outlasted the
    others' SQLite busy timeout and one of them failed to start. Starting processes queue on
    the writer lock instead, however long the migration takes."""
    Store.open(settings).close()
    store = Store.open(settings)
    try:
        with write_transaction(store.engine) as conn:  # a migration holding the write lock
            conn.execute(text("CREATE TABLE slow_migration (x INTEGER)"))
            starting = _start(settings, RCA_SQLITE_BUSY_TIMEOUT_MS="300")
            time.sleep(1.5)  # five busy timeouts
            assert starting.poll() is None  # still waiting, not failed
        code = starting.wait(60)
        out, err = starting.communicate()
        assert code == 0 and out.strip() == "opened", err[-600:]
    finally:
        store.close()
