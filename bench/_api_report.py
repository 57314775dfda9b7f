"""The table `bench/api.py` prints: one row per scenario, one group of columns per back end.

Each statistic is the median over rounds; `ratio` is a scenario's p50 over the p50 of the
baseline (`GET /healthz`) of the same back end and run. A scenario with a target meets it when
its p99 is at most the target and it had no error; one that got no answer at all within the run
(wrk then reports zero latencies) is marked NONE, whatever its target.
"""

from __future__ import annotations

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


@dataclass
class Row:
    """A scenario's medians over rounds on one back end."""

    rps: float
    p50_ms: float
    p99_ms: float
    ratio: float
    errors: float


def rows(run: Run, scenarios: Sequence[Scenario]) -> dict[str, Row]:
    """Medians over rounds, the ratio against the run's own baseline (the first scenario)."""

    def mid(name: str, attr: str) -> float:
        return median([getattr(r, attr) for r in run.results[name]])

    base = mid(scenarios[0].name, "p50_ms")
    return {
        s.name: Row(
            mid(s.name, "rps"),
            mid(s.name, "p50_ms"),
            mid(s.name, "p99_ms"),
            mid(s.name, "p50_ms") / base if base > 0 else float("nan"),
            mid(s.name, "errors"),
        )
        for s in scenarios
        if run.results.get(s.name)
    }


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
    cells = f"{'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6} {'errors':>6} {'target':>6}"
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
            )
        lines.append(line)
    for run in runs:
        memory = ", ".join(f"{name} {mib:.0f}" for name, mib in run.peak_rss_mib.items())
        lines.append(f"peak RSS (VmHWM) on {run.backend}, MiB: {memory or 'not read'}")
    return "\n".join(lines)
