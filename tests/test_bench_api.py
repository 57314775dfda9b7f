"""bench/api.py without running it: its options (and their refusals), wrk's output read, the
side-by-side table."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench._api_data import cpu_seconds
from bench._api_report import Run, table
from bench._api_wrk import Result, Scenario, lua_string, parse_wrk
from bench.api import main, parser, settle

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:8000
  1 threads and 32 connections
  Latency Distribution
     50%    4.20ms
     75%    6.00ms
     90%    9.00ms
     99%    1.20s
  2000 requests in 5.00s, 1.00MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:    400.50
"""


def test_defaults_and_both_backends() -> None:
    args = parser().parse_args([])
    assert (args.scale, args.backend, args.backends, args.clients) == (
        "examples",
        "sqlite",
        None,
        32,
    )
    args = parser().parse_args(["--scale", "10k", "--backends", "postgresql, sqlite,sqlite"])
    assert (args.scale, args.backends) == ("10k", ["sqlite", "postgresql"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backends", "sqlite,mysql"], "expected a comma-separated list of sqlite, postgresql"),
        (["--backends", ","], "expected a comma-separated list"),
        (["--backend", "mysql"], "invalid choice: 'mysql'"),
        (["--scale", "1m"], "invalid choice: '1m'"),
        (["--seconds", "0"], "must be more than 0"),
        (["--rounds", "-1"], "must be more than 0"),
        (["--clients", "many"], "expected a number"),
    ],
)
def test_bad_options_are_refused_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert message in err.splitlines()[-1]
    assert out == ""


def test_wrk_output_is_read_with_its_errors() -> None:
    assert parse_wrk(WRK_OUTPUT) == Result(
        rps=400.5, p50_ms=4.2, p99_ms=1200.0, errors=6, requests=2000
    )
    with pytest.raises(SystemExit, match="cannot read wrk's output"):
        parse_wrk("wrk: connection refused")


def test_a_path_that_lua_cannot_quote_is_refused() -> None:
    assert lua_string("/v1/x?q=a b") == "[==[/v1/x?q=a b]==]"
    with pytest.raises(ValueError, match="cannot quote"):
        lua_string("]==]")


def test_the_table_puts_back_ends_side_by_side() -> None:
    scenarios = [
        Scenario("GET /healthz (baseline)", "baseline", ["/healthz"]),
        Scenario("GET /v1/incidents/{id}", "reads", ["/v1/incidents/a"]),
        Scenario("POST /v1/incidents/{id}/drafts", "draft submission", ["/d"], "POST", "{}"),
    ]

    def run(backend: str, p99: float, errors: int) -> Run:
        return Run(
            backend,
            {
                scenarios[0].name: [
                    Result(1000, 2.0, 5.0, 0, 10_000, 0.5),
                    Result(900, 4.0, 7.0, 0, 9_000, 0.25),
                ],
                scenarios[1].name: [Result(500, 6.0, p99, errors, 5_000, 6.25)],
                scenarios[2].name: [],
            },
            {"server process 1": 180.4},
            clients=32,
            cores=2,
        )

    text = table([run("sqlite", 50.0, 0), run("postgresql", 120.0, 0)], scenarios)
    lines = text.splitlines()
    assert "sqlite" in lines[0] and "postgresql" in lines[0]
    # CPU ms: the median over rounds; floor: 32 clients x CPU ms / 2 cores
    assert lines[2].split() == (
        "GET /healthz (baseline) baseline | 950 3.0 6.0 1.0 0 0.38 6 "
        "| 950 3.0 6.0 1.0 0 0.38 6".split()
    )
    assert lines[3].split() == (
        "GET /v1/incidents/{id} reads 100 ms | 500 6.0 50.0 2.0 0 met 6.25 100 "
        "| 500 6.0 120.0 2.0 0 MISSED 6.25 100".split()
    )
    assert lines[4].split()[-4:] == ["run", "|", "not", "run"]
    stalled = Run("sqlite", {scenarios[0].name: [Result(1000, 2.0, 5.0, 0)]})
    stalled.results[scenarios[2].name] = [Result(0, 0.0, 0.0, 0)]
    assert table([stalled], scenarios).splitlines()[4].split()[-4:] == ["0", "NONE", "-", "-"]
    assert lines[5].startswith("CPU ms: the server side's CPU time per answer")
    assert lines[6] == "peak RSS (VmHWM) on sqlite, MiB: server process 1 180"


def test_cpu_time_is_read_for_a_process_and_its_children() -> None:
    """A parent that only waits, and a child that spins for 0.3 s of CPU: the tree's CPU time
    grows by about that much, and a pid that does not exist counts nothing."""
    spin = (
        "import sys, time\nend = time.process_time() + 0.3\n"
        "while time.process_time() < end: pass\nsys.stdin.read()"
    )
    script = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {spin!r}], stdin=subprocess.PIPE)\n"
        "print('started', flush=True); sys.stdin.read(); child.communicate()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            parent.stdout.readline()
            before = cpu_seconds([parent.pid])
            deadline = time.monotonic() + 10.0  # a busy machine gives the child its 0.3 s later
            while cpu_seconds([parent.pid]) - before < 0.1 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # the rest of its spin; then it only waits
            used = cpu_seconds([parent.pid]) - before
            assert 0.1 <= used <= 0.9
            assert cpu_seconds([2**22 + 1]) == 0.0
        finally:
            parent.kill()


def test_a_scenario_starts_once_the_server_side_is_idle() -> None:
    """`settle` returns at once for an idle process, waits while one still works, and gives
    up (None) on one that never stops."""
    spin = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as idle:
        try:
            waited = settle([idle.pid])
            assert waited is not None and waited < 2.0
        finally:
            idle.kill()
    with subprocess.Popen([sys.executable, "-c", spin.format(s=1.5)]) as busy:
        waited = settle([busy.pid])
        assert waited is not None and waited >= 1.0
    with subprocess.Popen([sys.executable, "-c", spin.format(s=30)]) as endless:
        try:
            assert settle([endless.pid], limit_s=1.5) is None
        finally:
            endless.kill()
