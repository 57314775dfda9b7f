"""The Insights page's charts, drawn as our own SVG (no chart library, no script): the median and
p90 times to detect, mitigate and resolve per month, incidents per month stacked by severity, and
horizontal bars for counts (failure modes, services, factor categories).

Labels (service names, failure modes) are untrusted and reach the picture only through `svg`'s
escaping helpers. A chart without data draws its title and a clear message, never an empty
axis. Months without data leave a gap in a trend line, never a zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import NamedTuple

from api.web.diagrams import svg
from api.web.diagrams.fishbone import CATEGORY_COLOUR
from api.web.diagrams.svg import BOLD, HALO, INK, LINE, MUTED
from api.web.diagrams.timeline import format_duration
from rca.insights.report import MonthRow, Spread

WIDE, HALF = 1200, 600
"""Natural widths of a full-width chart and of one in a two-column row (the page scales down)."""
NO_INCIDENTS = "No incidents in this range"
NO_POSTMORTEMS = "No postmortems in this range"
GRID = "#eaecf0"
# The hues of the pages' `.sev-*` badges, saturated enough to tell apart as bar fills.
SEVERITY_FILL: dict[str, str] = {
    "SEV1": "#d92d20",
    "SEV2": "#f79009",
    "SEV3": "#fac515",
    "SEV4": "#444ce7",
    "SEV5": "#a4bcfd",
}
# The colours of the detected, mitigated and resolved moments on the incident timeline.
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("detect", "Time to detect", "#93370d"),
    ("mitigate", "Time to mitigate", "#026aa2"),
    ("resolve", "Time to resolve", "#05603a"),
)
CATEGORY_FILL = {category.value: colour for category, colour in CATEGORY_COLOUR.items()}
"""Contributing-factor categories in the colours of their fishbone bones."""
_LOG_TICKS = (1, 10, 60, 300, 900, 3600, 14400, 86400, 259200, 604800, 2592000, 7776000)
_MAJOR = (60, 3600, 86400, 604800)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Bar(NamedTuple):
    """One row of a horizontal bar chart."""

    key: str
    """Stable id (a failure mode's id, a service name), for `data-key`."""
    label: str
    value: int


def short_duration(seconds: float) -> str:
    """A round axis duration in one unit: `10 s`, `5 min`, `4 h`, `3 d`."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _title(title: str, note: str = "") -> list[str]:
    """The chart's title at the top left, and an optional muted note to its right."""
    out = [svg.text(16, 24, [title], size=15, extra=BOLD)]
    if note:
        out.append(svg.text(24 + svg.width(title, 15) * 1.08, 24, [note], size=12, fill=MUTED))
    return out


def no_data(title: str, message: str, width: float = WIDE, height: float = 120) -> str:
    """A chart-sized picture with the title and a clear message instead of an empty axis."""
    body = [
        *_title(title),
        f'<rect x="16" y="40" width="{width - 32}" height="{height - 56}" rx="8" fill="#f9fafb" '
        f'stroke="{GRID}"/>',
        svg.text(
            width / 2 - svg.width(message, 14) / 2,
            40 + (height - 56) / 2 + 5,
            [message],
            size=14,
            fill=MUTED,
            extra=' class="no-data"',
        ),
    ]
    return svg.document(width, height, title, message, body)


def _month_axis(months: Sequence[str], left: float, step: float, top: float, y: float) -> list[str]:
    """Month labels under the plot at `y` (a year under each January and the first label), and
    a faint vertical line at each new year from `top` down to `y`."""
    every = next((s for s in (1, 2, 3, 6, 12) if len(months) / s <= 24), 12)
    out: list[str] = []
    first = True
    for i, month in enumerate(months):
        year, number = month.split("-")
        x = left + (i + 0.5) * step
        if number == "01" and i:
            out.append(
                f'<line x1="{left + i * step:.1f}" y1="{top}" x2="{left + i * step:.1f}" '
                f'y2="{y}" stroke="{LINE}" stroke-dasharray="2 3"/>'
            )
        if (int(number) - 1) % every:
            continue
        name = _MONTHS[int(number) - 1]
        lines = [name, year] if first or number == "01" else [name]
        out.append(
            f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="{INK}"/>'
            + svg.text(x - svg.width(name, 11) / 2, y + 16, lines, size=11, fill=MUTED)
        )
        first = False
    return out


def _log_ticks(values: Sequence[float]) -> list[int]:
    """The round durations spanning `values` (at least two)."""
    lo, hi = max(min(values), 1.0), max(max(values), 1.0)
    low = max((t for t in _LOG_TICKS if t <= lo), default=_LOG_TICKS[0])
    high = min((t for t in _LOG_TICKS if t >= hi), default=_LOG_TICKS[-1])
    ticks = [t for t in _LOG_TICKS if low <= t <= high]
    return ticks if len(ticks) > 1 else [low, next(t for t in _LOG_TICKS if t > low)]


def _spaced(ticks: Sequence[int], ys: Sequence[float], gap: float = 18) -> list[int]:
    """The ticks (at heights `ys`) to label, `gap` px apart at least: the ends of the scale
    first, then 1 min, 1 h, 1 d, 7 d, then the others as they fit."""
    at = dict(zip(ticks, ys, strict=True))
    kept: list[int] = []
    for tick in (ticks[0], ticks[-1], *_MAJOR, *ticks):
        if tick in at and all(abs(at[tick] - at[k]) >= gap for k in kept):
            kept.append(tick)
    return sorted(kept)


def _spread_of(month: MonthRow, measure: str) -> Spread:
    spread: Spread = getattr(month.times, measure)
    return spread


def _point_note(month: MonthRow, label: str, spread: Spread) -> str:
    median = format_duration(timedelta(seconds=spread.median_s or 0))
    p90 = format_duration(timedelta(seconds=spread.p90_s or 0))
    note = f"{month.month} · {label.lower()}: median {median}, p90 {p90}"
    note += f" · {spread.count} of {month.times.incidents} incidents"
    return note


def _series(points: Sequence[tuple[float, float] | None], colour: str, *, faint: bool) -> list[str]:
    """A line through consecutive points, broken where a month has none."""
    out, run = [], []
    dash = ' stroke-dasharray="5 4" stroke-opacity="0.45"' if faint else ""
    for point in [*points, None]:
        if point is not None:
            run.append(point)
            continue
        if len(run) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" '
                f'stroke-width="{1.5 if faint else 2.2}" stroke-linejoin="round"{dash}/>'
            )
        run = []
    return out


def time_trends_svg(months: Sequence[MonthRow], *, width: float = WIDE) -> str:
    """Median (solid, with a dot per month) and p90 (faint, dashed) time to detect, mitigate
    and resolve per month: one panel each, on one logarithmic duration scale."""
    title = "Time to detect, mitigate and resolve, per month"
    values = [
        v
        for m in months
        for measure, *_ in MEASURES
        for v in (_spread_of(m, measure).median_s, _spread_of(m, measure).p90_s)
        if v is not None
    ]
    if not values:
        had = any(m.times.incidents for m in months)
        message = "No incident in this range has these times" if had else NO_INCIDENTS
        return no_data(title, message, width)
    ticks = _log_ticks(values)
    left, right, top, panel_h, gap = 84.0, width - 24.0, 64.0, 130.0, 36.0
    step = (right - left) / len(months)
    low, high = math.log(ticks[0]), math.log(ticks[-1])

    def y_of(seconds: float, base: float) -> float:
        share = (math.log(max(seconds, ticks[0])) - low) / (high - low)
        return base + panel_h - min(share, 1.0) * panel_h

    body = _title(title, "median per month, p90 dashed · log scale · gaps: no data")
    for n, (measure, label, colour) in enumerate(MEASURES):
        base = top + n * (panel_h + gap)
        body.append(svg.text(left, base - 8, [label], size=13, fill=colour, extra=BOLD))
        for tick in _spaced(ticks, [y_of(t, base) for t in ticks]):
            y = y_of(tick, base)
            body.append(
                f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{GRID}"/>'
                + svg.text(
                    left - 8 - svg.width(short_duration(tick), 11),
                    y + 4,
                    [short_duration(tick)],
                    size=11,
                    fill=MUTED,
                )
            )
        medians: list[tuple[float, float] | None] = []
        p90s: list[tuple[float, float] | None] = []
        dots: list[str] = []
        for i, month in enumerate(months):
            spread, x = _spread_of(month, measure), left + (i + 0.5) * step
            if spread.median_s is None or spread.p90_s is None:
                medians.append(None)
                p90s.append(None)
                continue
            y = y_of(spread.median_s, base)
            medians.append((x, y))
            p90s.append((x, y_of(spread.p90_s, base)))
            dots.append(
                f'<circle class="point" data-month="{svg.safe_id(month.month)}" cx="{x:.1f}" '
                f'cy="{y:.1f}" r="3.5" fill="{colour}" stroke="#ffffff">'
                f"{svg.title(_point_note(month, label, spread))}</circle>"
            )
        if not dots:
            body.append(svg.text(left + 12, base + panel_h / 2, ["No times recorded"], fill=MUTED))
        body += _series(p90s, colour, faint=True) + _series(medians, colour, faint=False) + dots
    bottom = top + 3 * panel_h + 2 * gap
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{INK}"/>')
    body += _month_axis([m.month for m in months], left, step, top - 4, bottom)
    body.append(_y_label(20, top + (bottom - top) / 2, "time from start of impact"))
    counted = (
        f"{label}: {sum(1 for m in months if _spread_of(m, k).count)} months with data"
        for k, label, _ in MEASURES
    )
    desc = f"Median and p90 per month, {months[0].month} to {months[-1].month}. " + "; ".join(
        counted
    )
    return svg.document(width, bottom + 44, title, desc, body)


def _y_label(x: float, y: float, label: str) -> str:
    """A vertical axis label centred on (x, y)."""
    w = svg.width(label, 11)
    return (
        f'<g transform="rotate(-90 {x:.1f} {y:.1f})">'
        f"{svg.text(x - w / 2, y + 4, [label], size=11, fill=MUTED)}</g>"
    )


def _count_ticks(top: int) -> list[int]:
    """Round tick values from 0 to at least `top`: at most six."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if top / s <= 5)
    step = max(step, math.ceil(top / 5))
    return list(range(0, math.ceil(max(top, 1) / step) * step + 1, step))


def severity_bars_svg(months: Sequence[MonthRow], *, width: float = WIDE) -> str:
    """Incidents per month as bars stacked by severity (SEV1 at the bottom), with a legend."""
    title = "Incidents per month, by severity"
    totals = [sum(m.by_severity.values()) for m in months]
    if not any(totals):
        return no_data(title, NO_INCIDENTS, width)
    left, right, top, plot_h = 64.0, width - 24.0, 60.0, 190.0
    ticks = _count_ticks(max(totals))
    step = (right - left) / len(months)
    bar_w = max(2.0, min(step * 0.72, 40.0))
    scale = plot_h / ticks[-1]
    base = top + plot_h
    body = _title(title)
    x = right
    for severity in reversed(SEVERITY_FILL):  # the legend, right-aligned, SEV1 first
        x -= svg.width(severity, 12) + 26
        body.append(
            f'<rect x="{x:.1f}" y="13" width="12" height="12" rx="2" '
            f'fill="{SEVERITY_FILL[severity]}"/>' + svg.text(x + 16, 24, [severity], fill=INK)
        )
    for tick in ticks:
        y = base - tick * scale
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{GRID}"/>'
            + svg.text(left - 8 - svg.width(str(tick), 11), y + 4, [str(tick)], size=11, fill=MUTED)
        )
    for i, (month, total) in enumerate(zip(months, totals, strict=True)):
        if not total:
            continue
        x, y = left + (i + 0.5) * step - bar_w / 2, base
        parts = [f'<g class="bar" data-month="{svg.safe_id(month.month)}">']
        counts = ", ".join(f"{s} {n}" for s, n in month.by_severity.items() if n)
        parts.append(svg.title(f"{month.month}: {total} incidents ({counts})"))
        for severity, fill in SEVERITY_FILL.items():
            h = month.by_severity.get(severity, 0) * scale
            if h:
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                    f'fill="{fill}" stroke="#ffffff" stroke-width="0.5"/>'
                )
        if step >= 14:
            label = str(total)
            parts.append(
                svg.text(
                    x + bar_w / 2 - svg.width(label, 10) / 2, y - 4, [label], size=10, fill=MUTED
                )
            )
        body.append("".join(parts) + "</g>")
    body.append(f'<line x1="{left}" y1="{base}" x2="{right}" y2="{base}" stroke="{INK}"/>')
    body += _month_axis([m.month for m in months], left, step, top, base)
    body.append(_y_label(18, top + plot_h / 2, "incidents"))
    desc = f"{sum(totals)} incidents in {sum(1 for t in totals if t)} of {len(months)} months"
    return svg.document(width, base + 44, title, desc, body)


def hbars_svg(
    title: str,
    bars: Sequence[Bar],
    *,
    unit: str,
    empty: str,
    width: float = HALF,
    limit: int = 12,
    colour: str = "#1d4ed8",
    colours: Mapping[str, str] | None = None,
) -> str:
    """Horizontal bars, largest first, each labelled with its name (wrapped to two lines) and
    its value; at most `limit`, with a note of how many more there are. `colours` by key
    overrides `colour`."""
    if not bars:
        return no_data(title, empty, width)
    shown = sorted(bars, key=lambda b: (-b.value, b.label))[:limit]
    labels = [svg.wrap(b.label, width * 0.4, 12, 2) for b in shown]
    label_w = max(svg.width(line, 12) for lines in labels for line in lines)
    left = 16 + min(label_w, width * 0.4) + 12
    right = width - 16 - svg.width(str(max(b.value for b in shown)), 12) - 8
    row_h = 34.0 if any(len(lines) > 1 for lines in labels) else 26.0
    top = 44.0
    ticks = _count_ticks(max(b.value for b in shown))
    scale = (right - left) / ticks[-1]
    bottom = top + row_h * len(shown)
    body = _title(title)
    for tick in ticks:
        x = left + tick * scale
        label = str(tick)
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" stroke="{GRID}"/>'
            + svg.text(x - svg.width(label, 11) / 2, bottom + 15, [label], size=11, fill=MUTED)
        )
    for n, (bar, lines) in enumerate(zip(shown, labels, strict=True)):
        y, fill = top + n * row_h, (colours or {}).get(bar.key, colour)
        text_y = y + row_h / 2 + 4 - (len(lines) - 1) * 7.5
        body.append(
            f'<g class="bar" data-key="{svg.safe_id(bar.key)}">'
            f"{svg.title(f'{bar.label}: {bar.value} {unit}')}"
            + svg.text(16, text_y, lines, extra=' class="label"')
            + f'<rect x="{left:.1f}" y="{y + row_h / 2 - 8:.1f}" height="16" rx="3" '
            f'width="{max(bar.value * scale, 2):.1f}" fill="{fill}"/>'
            + svg.text(
                left + bar.value * scale + 6,
                y + row_h / 2 + 4,
                [str(bar.value)],
                extra=BOLD + HALO + ' class="value"',
            )
            + "</g>"
        )
    body.append(f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{bottom}" stroke="{INK}"/>')
    axis = unit if len(bars) <= limit else f"{unit} · {len(bars) - limit} more in the CSV"
    body.append(
        svg.text(
            left + (right - left) / 2 - svg.width(axis, 11) / 2,
            bottom + 32,
            [axis],
            size=11,
            fill=MUTED,
        )
    )
    desc = "; ".join(f"{b.label}: {b.value}" for b in shown)
    return svg.document(width, bottom + 42, title, f"{unit} — {desc}", body)
