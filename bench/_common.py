"""Shared bits of the benchmark scripts: timing, medians, memory, temporary settings."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rca.config import Settings


def scratch_settings(data_dir: Path) -> Settings:
    """The environment's settings (`RCA_RETRIEVAL__INT8=all` etc. apply), but a throw-away data
    directory, SQLite and embedded chroma."""
    settings = Settings()
    return settings.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": None,
            "retrieval": settings.retrieval.model_copy(update={"chroma_url": None}),
        }
    )


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def median(values: Sequence[float]) -> float:
    """The median (the benchmarks quote medians: the machines are noisy)."""
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
