"""The incident timeline: a UTC time axis with the entries, the key moments (started, detected,
mitigated, resolved) and the time to detect, mitigate and resolve; and the duration helpers the
incident page also shows as text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from api.web.diagrams import svg
from api.web.diagrams.svg import BOLD, HALO, INK, LINE, MUTED
from rca.domain import PostmortemTimelineEntry as Entry

_MOMENTS = ("Started", "Detected", "Mitigated", "Resolved")
_MOMENT_COLOUR = dict(zip(_MOMENTS, ("#b42318", "#93370d", "#026aa2", "#05603a"), strict=True))
_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def format_duration(td: timedelta) -> str:
    """A duration the way people say it: `45 s`, `12 min`, `2 h 05 min`, `1 d 3 h` (floored)."""
    seconds = int(td.total_seconds())
    if seconds < 0:
        return "-" + format_duration(-td)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{secs} s"


def durations(
    started_at: datetime,
    detected_at: datetime | None = None,
    mitigated_at: datetime | None = None,
    resolved_at: datetime | None = None,
) -> list[tuple[str, timedelta]]:
    """Time to detect, mitigate and resolve, each from the start of impact; unknown ones omitted."""
    ends = zip(
        ("detect", "mitigate", "resolve"), (detected_at, mitigated_at, resolved_at), strict=True
    )
    return [(f"time to {what}", at - started_at) for what, at in ends if at is not None]


class _Label(NamedTuple):
    """A label to place: the x of the thing it names, and its left and right edges."""

    x: float
    lo: float
    hi: float


def _label(x: float, w: float, width: float) -> _Label:
    """A label of width `w` centred on `x`, kept inside the picture."""
    lo = min(max(x - w / 2, 6.0), width - 6.0 - w)
    return _Label(x, lo, lo + w)


def _lanes(labels: Sequence[_Label], lanes: int, sides: int) -> list[int | None]:
    """Greedy lane per label, None when none is free. Lane n is row n // sides on side n % sides;
    labels in a lane keep 10 px apart, and no label covers the leader of one farther out."""
    placed: list[tuple[int, _Label]] = []
    out: list[int | None] = []
    for new in labels:
        lane = next(
            (n for n in range(lanes) if all(_clear(n, new, *p, sides) for p in placed)), None
        )
        placed += [] if lane is None else [(lane, new)]
        out.append(lane)
    return out


def _clear(lane: int, new: _Label, other: int, old: _Label, sides: int) -> bool:
    """Whether `new` in `lane` keeps clear of `old` in lane `other`."""
    if lane == other:
        return new.lo >= old.hi + 10 or new.hi + 10 <= old.lo
    if lane % sides != other % sides:
        return True
    inner, outer = (old, new) if lane > other else (new, old)
    return not inner.lo - 4 <= outer.x <= inner.hi + 4


def _ticks(t0: datetime, span: float, left: float, right: float, y: float, fmt: str) -> list[str]:
    """Axis ticks at round times, at most one per 90 px."""
    step = next((s for s in _STEPS if span / s <= max(2, (right - left) // 90)), None)
    step = step or 86400 * math.ceil(span / 86400 / max(2, (right - left) // 90))
    out: list[str] = []
    for seconds in range(
        math.ceil(t0.timestamp() / step) * step, int(t0.timestamp() + span) + 1, step
    ):
        x = left + (seconds - t0.timestamp()) / span * (right - left)
        label = datetime.fromtimestamp(seconds, UTC).strftime(fmt)
        out.append(
            f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 6}" stroke="{INK}"/>'
            + svg.text(x - svg.width(label, 11) / 2, y + 19, [label], size=11, fill=MUTED)
        )
    return out


def timeline_svg(
    entries: Sequence[Entry],
    *,
    started_at: datetime,
    detected_at: datetime | None = None,
    mitigated_at: datetime | None = None,
    resolved_at: datetime | None = None,
) -> str:
    """A time axis (UTC) with a dot per entry, labels for those that fit without overlapping
    (alternately above and below), the key moments as coloured diamonds, and the time to detect,
    mitigate and resolve as bars from the start. All datetimes must be timezone-aware."""
    given = (started_at, detected_at, mitigated_at, resolved_at)
    moments = [(n, _MOMENT_COLOUR[n], at) for n, at in zip(_MOMENTS, given, strict=True) if at]
    ordered = sorted(entries, key=lambda e: e.at)
    times = [at for *_, at in moments] + [e.at for e in ordered]
    first, t1 = min(times), max(times)
    span = max((t1 - first).total_seconds(), 900.0)  # at least 15 minutes, centred on the moments
    t0 = first - timedelta(seconds=(span - (t1 - first).total_seconds()) / 2)
    width = min(1600, max(760, 260 + 110 * len(ordered)))
    left, right = 56.0, width - 56.0

    def x_of(at: datetime) -> float:
        return left + (at - t0).total_seconds() / span * (right - left)

    same_day = t0.astimezone(UTC).date() == t1.astimezone(UTC).date()
    fmt = "%H:%M" if same_day else "%b %d %H:%M"

    def stamp(at: datetime) -> str:
        return at.astimezone(UTC).strftime(fmt)

    marks = [f"{name} {stamp(at)}" for name, _, at in moments]
    mark_at = [
        _label(x_of(at), svg.width(m, 12) + 4, width)
        for (*_, at), m in zip(moments, marks, strict=True)
    ]
    mark_rows = [n or 0 for n in _lanes(mark_at, len(moments), len(moments))]  # rows >= labels
    texts = [(stamp(e.at), svg.wrap(e.text, 200, 12, 1)[0]) for e in ordered]
    label_at = [
        _label(x_of(e.at), max(svg.width(a, 11), svg.width(b, 12)), width)
        for e, (a, b) in zip(ordered, texts, strict=True)
    ]
    lanes = _lanes(label_at, 4, 2)  # lanes 0 and 2 above the axis, 1 and 3 below
    above = max((n // 2 + 1 for n in lanes if n is not None and n % 2 == 0), default=0)
    below = max((n // 2 + 1 for n in lanes if n is not None and n % 2 == 1), default=0)
    band = 12 + (max(mark_rows) + 1) * 20  # moment labels, row 0 nearest the axis
    axis_y = band + above * 38 + 16
    bars_y = axis_y + 30 + below * 38 + 6
    spans = durations(started_at, detected_at, mitigated_at, resolved_at)
    height = bars_y + len(spans) * 34 + (0 if ordered else 26) + 8

    body = [
        f'<line x1="{x_of(at):.1f}" y1="{band - row * 20 - 2}" x2="{x_of(at):.1f}" '
        f'y2="{height - 8}" stroke="{colour}" stroke-opacity="0.5" stroke-dasharray="3 3"/>'
        for (_, colour, at), row in zip(moments, mark_rows, strict=True)
    ]
    body.append(
        f'<line x1="{left - 8}" y1="{axis_y}" x2="{right + 8}" y2="{axis_y}" stroke="{INK}" '
        f'stroke-width="2"/>{svg.text(right + 12, axis_y + 4, ["UTC"], size=11, fill=MUTED)}'
    )
    body.extend(_ticks(t0, span, left, right, axis_y, fmt))
    for entry, (when, short), spot, lane in zip(ordered, texts, label_at, lanes, strict=True):
        parts = [f'<g class="entry">{svg.title(f"{stamp(entry.at)} UTC: {entry.text}")}']
        if lane is not None:
            up, row = lane % 2 == 0, lane // 2
            top = axis_y - 16 - (row + 1) * 38 + 4 if up else axis_y + 30 + row * 38
            parts.append(
                f'<line x1="{spot.x:.1f}" y1="{axis_y}" x2="{spot.x:.1f}" '
                f'y2="{top + 32 if up else top}" stroke="{LINE}"/>'
                f"{svg.text(spot.lo, top + 11, [when], size=11, fill=MUTED, extra=HALO)}"
                f"{svg.text(spot.lo, top + 27, [short], extra=HALO)}"
            )
        dot = f'<circle cx="{spot.x:.1f}" cy="{axis_y}" r="4.5" fill="{INK}"/>'
        body.append("".join(parts) + dot + "</g>")
    for (name, colour, _), mark, spot, row in zip(moments, marks, mark_at, mark_rows, strict=True):
        body.append(
            f'<g class="moment moment-{name.lower()}"><path d="M{spot.x:.1f},{axis_y - 8} l8,8 '
            f'l-8,8 l-8,-8 z" fill="{colour}" stroke="#ffffff"/>'
            + svg.text(spot.lo + 2, band - 6 - row * 20, [mark], fill=colour, extra=BOLD + HALO)
            + "</g>"
        )
    if not ordered:
        body.append(svg.text(left, height - 18, ["No timeline entries"], fill=MUTED))
    start_x = x_of(started_at)
    for i, ((label, td), (*_, colour, at)) in enumerate(zip(spans, moments[1:], strict=True)):
        y, end_x, text = bars_y + i * 34, x_of(at), f"{label.capitalize()}: {format_duration(td)}"
        lo = min(max(min(start_x, end_x), 6.0), width - 6.0 - svg.width(text, 12))
        body.append(
            f'<g class="duration">{svg.text(lo, y + 12, [text], fill=colour, extra=BOLD + HALO)}'
            f'<rect x="{min(start_x, end_x):.1f}" y="{y + 18}" height="6" rx="3" fill="{colour}" '
            f'width="{max(abs(end_x - start_x), 3):.1f}"/></g>'
        )
    summary = "; ".join(f"{label} {format_duration(td)}" for label, td in spans)
    desc = f"Timeline from {stamp(first)} to {stamp(t1)} UTC, {len(ordered)} entries. {summary}"
    return svg.document(width, height, "Incident timeline", desc, body)
