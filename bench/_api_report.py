"""The table `bench/api.py` prints: one row per scenario, one group of columns per back end.

Each statistic is the median over rounds; `ratio` is a scenario's p50 over the p50 of the
baseline (`GET /healthz`) of the same back end and run. `CPU ms` is the CPU time the server side
spent per answer (all its processes, see `Result.cpu_ms`), and `floor` what that costs at
best: `clients` x `CPU ms` / cores. A closed loop's mean latency is clients / throughput, and
the cores answer at most cores / `CPU ms` requests a second, so no scheduling brings the mean
latency below the floor; a scenario whose floor is above its target cannot meet it without
spending less CPU per request (or more cores). A scenario with a target meets it when
its p99 is at most the target and it had no error; one that got no answer at all within the run
(wrk then reports zero latencies) is marked NONE, whatever its target.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench._api_wrk import Result, Scenario
from bench._common import median

TARGETS_MS = {"reads": 100.0, "search": 150.0, "draft submission": 200.0}
"""p99 targets by scenario group, from the issue."""


@dataclass
class Run:
    """What one back end measured: results per scenario name, peak RSS per process."""

    backend: str
    results: dict[str, list[Result]]
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    clients: int = 32
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)


@dataclass
class Row:
    """A scenario's medians over rounds on one back end."""

    rps: float
    p50_ms: float
    p99_ms: float
    ratio: float
    errors: float
    cpu_ms: float | None = None
    floor_ms: float | None = None


def rows(run: Run, scenarios: Sequence[Scenario]) -> dict[str, Row]:
    """Medians over rounds, the ratio against the run's own baseline (the first scenario)."""

    def mid(name: str, attr: str) -> float:
        return median([getattr(r, attr) for r in run.results[name]])

    def cpu(name: str) -> float | None:
        read = [r.cpu_ms for r in run.results[name] if r.cpu_ms is not None]
        return median(read) if read else None

    base = mid(scenarios[0].name, "p50_ms")
    found: dict[str, Row] = {}
    for s in scenarios:
        if not run.results.get(s.name):
            continue
        cpu_ms = cpu(s.name)
        found[s.name] = Row(
            mid(s.name, "rps"),
            mid(s.name, "p50_ms"),
            mid(s.name, "p99_ms"),
            mid(s.name, "p50_ms") / base if base > 0 else float("nan"),
            mid(s.name, "errors"),
            cpu_ms,
            None if cpu_ms is None else floor_ms(cpu_ms, run.clients, run.cores),
        )
    return found


def floor_ms(cpu_ms: float, clients: int, cores: int) -> float:
    """The lowest mean latency `clients` closed-loop clients can see on `cores` cores when each
    request costs `cpu_ms` of CPU (see the module's docstring)."""
    return clients * cpu_ms / cores


def verdict(scenario: Scenario, row: Row | None) -> str:
    """`met`, `MISSED`, `NONE` (no answer came back within the run: no latency to judge), or
    empty when the scenario has no target (or was not run)."""
    target = TARGETS_MS.get(scenario.group)
    if row is None or (target is None and row.rps > 0):
        return ""
    if row.rps == 0:
        return "NONE"
    if target is None:
        return ""
    return "met" if row.p99_ms <= target and row.errors == 0 else "MISSED"


def table(runs: Sequence[Run], scenarios: Sequence[Scenario]) -> str:
    """The side-by-side table, then the peak RSS of each back end's processes."""
    by_backend = [(run, rows(run, scenarios)) for run in runs]
    cells = (
        f"{'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6} {'errors':>6} {'target':>6}"
        f" {'CPU ms':>6} {'floor':>6}"
    )
    width = len(cells)
    lines = [
        f"{'':<40} {'':<16} {'':<8}" + "".join(f" | {run.backend:^{width}}" for run in runs),
        f"{'scenario':<40} {'group':<16} {'p99 <=':<8}" + f" | {cells}" * len(runs),
    ]
    for scenario in scenarios:
        target = TARGETS_MS.get(scenario.group)
        line = f"{scenario.name:<40} {scenario.group:<16} "
        line += f"{f'{target:.0f} ms' if target else '':<8}"
        for _, found in by_backend:
            row = found.get(scenario.name)
            if row is None:
                line += f" | {'not run':^{width}}"
                continue
            line += (
                f" | {row.rps:7.0f} {row.p50_ms:7.1f} {row.p99_ms:7.1f} {row.ratio:6.1f}"
                f" {row.errors:6.0f} {verdict(scenario, row):>6}"
                f" {_number(row.cpu_ms, 2):>6} {_number(row.floor_ms, 0):>6}"
            )
        lines.append(line)
    lines.append(
        "CPU ms: the server side's CPU time per answer; floor: the lowest mean latency that "
        "CPU allows at this many clients (clients x CPU ms / cores)"
    )
    for run in runs:
        memory = ", ".join(f"{name} {mib:.0f}" for name, mib in run.peak_rss_mib.items())
        lines.append(f"peak RSS (VmHWM) on {run.backend}, MiB: {memory or 'not read'}")
    return "\n".join(lines)


def _number(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"
