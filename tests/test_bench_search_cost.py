"""bench/search_cost.py: its floors and table computed from given costs, its refusals, and a
small real run (the example postmortems and incidents, indexed by the bundled model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.search_cost import BASELINE, floor, main, per_op_ms, report
from rca.config import Settings
from rca.formats.importer import import_paths
from rca.store import Store
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.service import open_retrieval

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_the_floor_is_32_clients_over_2_cores() -> None:
    assert floor(5.0) == 80.0
    assert floor(0.0) == 0.0


def test_per_op_ms_counts_cpu_not_waiting() -> None:
    def spin(_i: int) -> None:
        sum(range(20_000))

    assert per_op_ms(spin, 50) > 0.0


def test_the_table_gives_ratios_floors_and_what_no_tuning_removes() -> None:
    cpu = {
        BASELINE: 0.5,
        "query embedding, batch of 16 (per query)": 3.0,
        "chroma query, 150 nearest": 2.5,
    }
    lines = report(cpu, 150, "query embedding, batch of 16 (per query)")
    assert re.search(r"query embedding, batch of 16 \(per query\)\s+3\.00\s+6\.0\s+48$", lines[2])
    assert any("batched embedding + chroma 150 = 5.50 ms, floor 88 ms" in line for line in lines)
    assert any("chroma 150 = 2.50 ms, floor 40 ms" in line for line in lines)


def test_missing_data_is_one_line_naming_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--data-dir", str(tmp_path)])
    assert "bench/api.py --scale 10k --backends sqlite --prepare-only" in str(stopped.value)
    with pytest.raises(SystemExit):
        main(["--queries", "3"])
    assert "--queries must be at least 16" in capsys.readouterr().err


def test_a_small_run_prints_every_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path / "sqlite" / "data")
    store = Store.open(settings)
    try:
        paths = [EXAMPLES / "postmortems", EXAMPLES / "incidents"]
        assert import_paths(store, paths, 5 << 20).ok
        retrieval = open_retrieval(settings, store, SentenceTransformerEmbedder())
        retrieval.indexer.sync()
        retrieval.close()
    finally:
        store.close()
    main(["--data-dir", str(tmp_path), "--queries", "16", "--rounds", "1"])
    out = capsys.readouterr().out
    for part in (
        BASELINE,
        "query embedding, alone",
        "query embedding, batch of 16 (per query)",
        "chroma query, 150 nearest",
        "lexical search, 50",
        "search, incident (vector kept)",
        "search, new text",
    ):
        row = next(line for line in out.splitlines() if line.startswith(part))
        cpu = float(row[48:].split()[0])
        assert cpu > 0.0, row
    assert "floor" in out
