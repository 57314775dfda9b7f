"""Crash safety: a handful of SIGKILLs of a real `rca serve` during bursts of writes, on SQLite
and on PostgreSQL; nothing acknowledged is lost, nothing replayed is stored twice, no job is
left running, the store is sound. (`python -m tests.crash.run` is the long version.)"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from rca.config import Settings
from rca.store import Store
from rca.store.engine import idempotency_keys, write_transaction
from tests.crash import checks, run
from tests.crash.client import Ledger


@pytest.mark.slow
def test_killed_servers_keep_every_acknowledged_write_and_store_none_twice(
    backend: str, tmp_path: Path
) -> None:
    options = run.Options(
        backend,
        kills=5,
        seed=7,
        budget_s=60,
        workers_every=0,
        fresh_every=0,
        burst_s=(0.5, 2.5),
        check_every=2,
        settle_s=60,
    )
    summary = run.run_crash(options, tmp_path, os.environ.get("RCA_DATABASE_URL"))
    counts = summary.ledger.counts
    assert summary.ledger.findings == [], summary.text()
    assert summary.kills >= 3, summary.text()
    assert counts["acknowledged"] > 0 and counts["replays"] > 0, summary.text()
    assert summary.integrity == "ok"
    assert summary.jobs.get("queued", 0) == summary.jobs.get("running", 0) == 0


def test_the_integrity_check_finds_a_key_left_in_flight(backend: str, tmp_path: Path) -> None:
    """The checks are not vacuous: a violation planted in a sound store is reported."""
    store = Store.open(Settings(data_dir=tmp_path / "data"))
    try:
        ledger = Ledger()
        assert checks.integrity(store.engine, ledger) == []
        with write_transaction(store.engine) as conn:
            conn.execute(
                insert(idempotency_keys).values(
                    principal="k1",
                    key="left",
                    request_hash="0" * 64,
                    state="in_flight",
                    created_at=datetime.now(UTC),
                )
            )
        found = checks.integrity(store.engine, ledger)
    finally:
        store.close()
    assert found == ["every idempotent request is finished and keeps its answer: broken by k1/left"]
    assert ledger.findings == [f"integrity: {found[0]}"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--backend", "sqlite", "--kills", "0"], "--kills and --threads must be at least 1"),
        (["--backend", "mysql"], "invalid choice: 'mysql'"),
        (["--kills", "3"], "the following arguments are required: --backend"),
        (["--backend", "sqlite", "--budget", "-1"], "--budget positive"),
    ],
)
def test_bad_options_are_one_clear_line(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        run.main(args)
    assert ended.value.code == 2
    assert error in capsys.readouterr().err
