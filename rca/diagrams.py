"""Server-side SVG pictures for the reviewer UI: causal chain, fishbone and incident timeline.

Each function returns one self-contained `<svg>` element (no script, no link, no external font or
image) that a page can inline. Every piece of text comes from an incident or from a model and is
untrusted: it is stripped of bidi and control characters, folded onto one line, XML-escaped, and
only ever written as text content or a quoted attribute value. Layout is deterministic: equal
input, equal output. Text widths are estimated, not measured, so boxes are a little generous.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

from rca.models import CausalNode, ContributingFactor, FactorCategory, NodeKind
from rca.models import PostmortemTimelineEntry as Entry

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
INK, MUTED, LINE = "#101828", "#475467", "#98a2b3"
BOLD = ' font-weight="bold"'
HALO = ' stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"'
_DROP = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufffe\uffff"
)
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
# Node kinds in causal order (the enum's order): fill, stroke and label colour, label.
_KIND_STYLE: dict[NodeKind, tuple[str, str, str]] = {
    NodeKind.ROOT_CAUSE: ("#fee4e2", "#b42318", "Root cause"),
    NodeKind.CONTRIBUTING_FACTOR: ("#fef0c7", "#93370d", "Contributing factor"),
    NodeKind.TRIGGER: ("#f4ebff", "#6941c6", "Trigger"),
    NodeKind.CAUSE: ("#e0f2fe", "#026aa2", "Cause"),
    NodeKind.SYMPTOM: ("#d1fadf", "#05603a", "Symptom"),
    NodeKind.IMPACT: ("#f2f4f7", "#344054", "Impact"),
}
_PALETTE = ("#b42318", "#6941c6", "#026aa2", "#05603a", "#93370d", "#c11574")
_CATEGORY_COLOUR = dict(zip(FactorCategory, _PALETTE, strict=False))

# ---------------------------------------------------------------------------------------------
# Text and document helpers


def clean(text: str) -> str:
    """Untrusted text as one plain line: bidi controls, control characters, lone surrogates and
    non-characters removed, whitespace folded to single spaces."""
    kept = (
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or (ch not in _DROP and unicodedata.category(ch) not in ("Cc", "Cs"))
    )
    return " ".join("".join(kept).split())


def _width(text: str, size: float) -> float:
    """Estimated rendered width: wide (CJK, emoji) characters 1 em, others 0.6 em."""
    return size * sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.6 for c in text)


def wrap(text: str, max_w: float, size: float, max_lines: int) -> list[str]:
    """Greedy word wrap of cleaned `text` to `max_lines` lines; the last one ends in `…` if cut."""
    lines: list[str] = []
    current = ""
    for word in clean(text).split(" "):
        if len(lines) > max_lines:  # enough to cut: the rest is never shown
            break
        candidate = f"{current} {word}" if current else word
        if _width(candidate, size) <= max_w:
            current = candidate
            continue
        if current:
            lines.append(current)
        while _width(word, size) > max_w and len(lines) <= max_lines:  # too wide: hard split
            cut = min(len(word) - 1, int(max_w / (0.6 * size)))  # no character is narrower
            while cut > 1 and _width(word[:cut], size) > max_w:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    lines.append(current)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and _width(last + "…", size) > max_w:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last.rstrip() + "…"]
    return lines


def _text(
    x: float, y: float, lines: Sequence[str], *, size: int = 12, fill: str = INK, extra: str = ""
) -> str:
    """A `<text>` element, one `<tspan>` per line; `extra` holds trusted attributes only."""
    step = round(size * 1.25)
    spans = "".join(
        f'<tspan x="{x:.1f}" dy="{step if i else 0}">{escape(clean(line))}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}"{extra}>{spans}</text>'


def _title(text: str) -> str:
    """A `<title>` child: the full text, shown on hover."""
    return f"<title>{escape(clean(text))}</title>"


def _svg(width: float, height: float, title: str, desc: str, body: Sequence[str]) -> str:
    """The root element, with an accessible name and description, around `body`."""
    w, h = math.ceil(width), math.ceil(height)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
        f'height="{h}" role="img" font-family="{FONT}">{_title(title)}'
        f'<desc>{escape(clean(desc))}</desc><rect width="{w}" height="{h}" fill="#ffffff"/>'
        f"{''.join(body)}</svg>"
    )


def _empty(title: str, message: str) -> str:
    """A small picture that says there is nothing to draw."""
    return _svg(320, 56, title, message, [_text(16, 33, [message], size=13, fill=MUTED)])


def _safe_id(value: str) -> str:
    """An id or class name limited to letters, digits and `_ . -` (ids are validated already)."""
    return "".join(c if c in _ID_CHARS else "_" for c in value)


# ---------------------------------------------------------------------------------------------
# Causal chain

BOX_W, GAP_X, GAP_Y, MARGIN = 184, 64, 18, 16
Edge = tuple[str, str]


def _columns(nodes: dict[str, CausalNode], edges: Sequence[Edge]) -> dict[str, int]:
    """Column per node: kinds in causal order, a chain inside one kind over sub-columns."""
    rank = {kind: i for i, kind in enumerate(NodeKind)}
    same = [(a, b) for a, b in edges if nodes[a].kind == nodes[b].kind]
    depth = dict.fromkeys(nodes, 0)
    for _ in nodes:  # longest path in at most len(nodes) rounds; a cycle just stops growing there
        for a, b in same:
            depth[b] = max(depth[b], depth[a] + 1)
    keys = sorted({(rank[n.kind], depth[i]) for i, n in nodes.items()})
    return {i: keys.index((rank[n.kind], depth[i])) for i, n in nodes.items()}


def _layout(
    nodes: dict[str, CausalNode], edges: Sequence[Edge]
) -> tuple[dict[str, int], list[list[str]], list[list[str]]]:
    """Columns of nodes and placeholders, and each forward edge as the chain of keys it passes:
    a placeholder (`~edge:column`) in every column it skips, so edges run between the boxes."""
    col = _columns(nodes, edges)
    columns: list[list[str]] = [[] for _ in range(max(col.values()) + 1)]
    for node_id in nodes:
        columns[col[node_id]].append(node_id)
    chains: list[list[str]] = []
    near: tuple[dict[str, list[str]], ...] = ({}, {})  # keys before and after each on a chain
    for i, (a, b) in enumerate(e for e in edges if col[e[0]] < col[e[1]]):
        chains.append([a, *(f"~{i}:{c}" for c in range(col[a] + 1, col[b])), b])
        for c in range(col[a] + 1, col[b]):
            col[f"~{i}:{c}"] = c
            columns[c].append(f"~{i}:{c}")
        for key, nxt in itertools.pairwise(chains[-1]):
            near[0].setdefault(nxt, []).append(key)
            near[1].setdefault(key, []).append(nxt)
    pos = {key: (i + 0.5) / len(c) for c in columns for i, key in enumerate(c)}
    for sweep in range(4):  # barycentre sweeps: sort by the mean position of the neighbours
        side = near[sweep % 2]
        for c in range(len(columns))[1:] if sweep % 2 == 0 else range(len(columns))[-2::-1]:
            mean = {
                k: sum(pos[n] for n in side.get(k, [k])) / len(side.get(k, [k])) for k in columns[c]
            }
            columns[c].sort(key=mean.__getitem__)
            pos.update({k: (i + 0.5) / len(columns[c]) for i, k in enumerate(columns[c])})
    return col, columns, chains


def _node(node: CausalNode, x: float, y: float, height: float) -> str:
    """A rounded box coloured by kind, with the kind's label and the wrapped text."""
    fill, stroke, label = _KIND_STYLE.get(node.kind, ("#f2f4f7", "#344054", str(node.kind)))
    return (
        f'<g class="node node-{_safe_id(node.kind.value)}" '
        f'data-node-id={quoteattr(_safe_id(node.id))} transform="translate({x:.1f},{y:.1f})">'
        f'{_title(node.text)}<rect width="{BOX_W}" height="{height:.1f}" rx="8" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="1.5"/>'
        f"{_text(10, 17, [label.upper()], size=11, fill=stroke, extra=BOLD)}"
        f"{_text(10, 36, wrap(node.text, BOX_W - 20, 12, 4))}</g>"
    )


def _edge(src: str, dst: str, path: str, arrow: str, *, dashed: bool) -> str:
    """A link drawn as `path`, ending in the arrowhead marker `arrow`."""
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    return (
        f'<path class="edge" data-source={quoteattr(_safe_id(src))} '
        f'data-target={quoteattr(_safe_id(dst))} d="{path}" fill="none" stroke="{MUTED}" '
        f'stroke-width="1.5"{dash} marker-end="url(#{arrow})"/>'
    )


def causal_chain_svg(nodes: Sequence[CausalNode], *, title: str = "Causal chain") -> str:
    """A left-to-right layered picture of the causal chain: a column per node kind in causal
    order, root causes first and impact last, links as arrows between the boxes.

    Links to unknown ids and self-links are ignored; duplicate ids keep the first node. Links
    against the causal order (including those closing a cycle) are drawn as dashed arcs.
    """
    by_id: dict[str, CausalNode] = {}
    for node in nodes:
        by_id.setdefault(node.id, node)
    if not by_id:
        return _empty(title, "No causal chain")
    links = ((n.id, t) for n in by_id.values() for t in n.leads_to if t in by_id and t != n.id)
    edges = list(dict.fromkeys(links))
    col, columns, chains = _layout(by_id, edges)
    box_h = 26 + max(len(wrap(n.text, BOX_W - 20, 12, 4)) for n in by_id.values()) * 15 + 8
    heights = [sum(8 if k[0] == "~" else box_h for k in c) + GAP_Y * (len(c) - 1) for c in columns]
    ys: dict[str, float] = {}  # vertical centre of every node and placeholder
    for column, height in zip(columns, heights, strict=True):
        y = MARGIN + (max(heights) - height) / 2
        for key in column:
            size = 8 if key[0] == "~" else box_h
            ys[key], y = y + size / 2, y + size + GAP_Y
    xs = {key: MARGIN + c * (BOX_W + GAP_X) for key, c in col.items()}
    digest = hashlib.sha256(repr([*by_id.values()]).encode("utf-8", "replace")).hexdigest()
    arrow = f"rca-arrow-{digest[:12]}"  # local to this picture, stable for equal input
    body = [
        f'<defs><marker id="{arrow}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" '
        'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{MUTED}"/></marker></defs>'
    ]
    for chain in chains:
        x, y = xs[chain[0]] + BOX_W, ys[chain[0]]
        path = f"M{x:.1f},{y:.1f}"
        for key in chain[1:]:
            nx, ny, half = xs[key], ys[key], (xs[key] - x) / 2
            path += f" C{x + half:.1f},{y:.1f} {nx - half:.1f},{ny:.1f} {nx:.1f},{ny:.1f}"
            x, y = nx + BOX_W, ny
            path += f" L{x:.1f},{y:.1f}" if key[0] == "~" else ""
        body.append(_edge(chain[0], chain[-1], path, arrow, dashed=False))
    for a, b in edges:
        if col[a] >= col[b]:  # against the causal order: an arc between the tops of the boxes
            sx, tx = xs[a] + BOX_W / 2, xs[b] + BOX_W / 2
            sy, ty = ys[a] - box_h / 2, ys[b] - box_h / 2
            lift = 30 + 0.15 * abs(tx - sx)
            path = f"M{sx:.1f},{sy:.1f} C{sx:.1f},{max(4, sy - lift):.1f} "
            path += f"{tx:.1f},{max(4, ty - lift):.1f} {tx:.1f},{ty:.1f}"
            body.append(_edge(a, b, path, arrow, dashed=True))
    body.extend(_node(by_id[i], xs[i], ys[i] - box_h / 2, box_h) for i in by_id)
    desc = f"{len(by_id)} nodes and {len(edges)} links, from root causes on the left to impact."
    width = MARGIN * 2 + len(columns) * (BOX_W + GAP_X) - GAP_X
    return _svg(width, MARGIN * 2 + max(heights), title, desc, body)


# ---------------------------------------------------------------------------------------------
# Fishbone

SLOPE, TWIG_W, LH = 0.5, 220, 15  # bone run per unit of rise, factor text width, line height


def _bone(factors: Sequence[ContributingFactor], *, top: bool) -> tuple[str, float, float, float]:
    """One category's bone, drawn from its foot on the spine at (0, 0): the category label at
    its end, each factor as text sitting on a twig line, clear of the bone. Returns the markup,
    the bone's rise, and how far its drawing reaches left and right of the foot."""
    category, sign = factors[0].category, -1 if top else 1
    parts, rise, reach = [], 22.0, 0.0
    for factor in factors:
        lines = wrap(factor.text, TWIG_W, 12, 4)
        block = len(lines) * LH
        twig = rise if top else rise + block  # distance of the twig line from the spine
        far = twig + block + 2 if top else twig  # the text's edge farthest from the spine
        start = -(far * SLOPE + 8 + max(_width(line, 12) for line in lines))
        parts.append(
            f'<g class="factor">{_title(factor.text)}<line x1="{start:.1f}" y1="{sign * twig}" '
            f'x2="{-twig * SLOPE:.1f}" y2="{sign * twig}" stroke="{LINE}" stroke-width="1.5"/>'
            f"{_text(start, sign * twig - 5 - (len(lines) - 1) * LH, lines)}</g>"
        )
        rise, reach = (far if top else twig) + 12, max(reach, -start)
    name, colour = _safe_id(category.value), _CATEGORY_COLOUR.get(category, INK)
    label_w, end_x, end_y = _width(name, 12) + 18, -(rise + 4) * SLOPE, sign * (rise + 4)
    label_x, label_y = end_x - label_w / 2, end_y - 22 if top else end_y + 4
    parts.insert(
        0,
        f'<line x1="0" y1="0" x2="{end_x:.1f}" y2="{end_y:.1f}" stroke="{colour}" '
        f'stroke-width="2"/><rect x="{label_x:.1f}" y="{label_y:.1f}" width="{label_w:.1f}" '
        f'height="18" rx="9" fill="{colour}"/>'
        + _text(label_x + 9, label_y + 13, [name.title()], fill="#ffffff", extra=BOLD),
    )
    markup = f'<g class="bone category-{name}" data-category="{name}">{"".join(parts)}</g>'
    return markup, rise + 4, max(reach, -label_x), max(0.0, label_x + label_w)


def fishbone_svg(factors: Sequence[ContributingFactor], *, effect: str) -> str:
    """An Ishikawa diagram: a bone per category that has factors, alternating above and below
    the spine, each factor a labelled twig, and the effect in the head on the right."""
    title = "Contributing factors"
    if not factors:
        return _empty(title, "No contributing factors")
    groups = [fs for c in FactorCategory if (fs := [f for f in factors if f.category == c])]
    bones = [_bone(fs, top=i % 2 == 0) for i, fs in enumerate(groups)]
    head_lines = wrap(effect, 190, 13, 6)
    head_h = len(head_lines) * 16 + 22
    top_h = max([head_h / 2 + 8] + [rise + 26 for _, rise, *_ in bones[0::2]])
    spine_y, x = 12 + top_h, 16.0
    body = [""]  # the spine goes first, once its length is known
    for slot in range(0, len(bones), 2):  # a top and a bottom bone share a foot on the spine
        pair = bones[slot : slot + 2]
        foot = x + max(left for *_, left, _ in pair)
        move = f'<g transform="translate({foot:.1f},{spine_y:.1f})">'
        body += [f"{move}{markup}</g>" for markup, *_ in pair]
        x = foot + max(right for *_, right in pair) + 28
    body[0] = (
        f'<line x1="16" y1="{spine_y}" x2="{x}" y2="{spine_y}" stroke="{INK}" stroke-width="3"/>'
    )
    body.append(
        f'<g class="effect">{_title(effect)}<rect x="{x:.1f}" y="{spine_y - head_h / 2:.1f}" '
        f'width="210" height="{head_h}" rx="10" fill="#fee4e2" stroke="#b42318" stroke-width="2"/>'
        f"{_text(x + 10, spine_y - head_h / 2 + 25, head_lines, size=13, extra=BOLD)}</g>"
    )
    bottom_h = max([head_h / 2 + 8] + [rise + 26 for _, rise, *_ in bones[1::2]])
    desc = f"Effect: {effect}. " + "; ".join(f"{fs[0].category}: {len(fs)}" for fs in groups)
    return _svg(x + 226, spine_y + bottom_h + 12, title, desc, body)


# ---------------------------------------------------------------------------------------------
# Timeline

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
            + _text(x - _width(label, 11) / 2, y + 19, [label], size=11, fill=MUTED)
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
        _label(x_of(at), _width(m, 12) + 4, width)
        for (*_, at), m in zip(moments, marks, strict=True)
    ]
    mark_rows = [n or 0 for n in _lanes(mark_at, len(moments), len(moments))]  # rows >= labels
    texts = [(stamp(e.at), wrap(e.text, 200, 12, 1)[0]) for e in ordered]
    label_at = [
        _label(x_of(e.at), max(_width(a, 11), _width(b, 12)), width)
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
        f'stroke-width="2"/>{_text(right + 12, axis_y + 4, ["UTC"], size=11, fill=MUTED)}'
    )
    body.extend(_ticks(t0, span, left, right, axis_y, fmt))
    for entry, (when, short), spot, lane in zip(ordered, texts, label_at, lanes, strict=True):
        parts = [f'<g class="entry">{_title(f"{stamp(entry.at)} UTC: {entry.text}")}']
        if lane is not None:
            up, row = lane % 2 == 0, lane // 2
            top = axis_y - 16 - (row + 1) * 38 + 4 if up else axis_y + 30 + row * 38
            parts.append(
                f'<line x1="{spot.x:.1f}" y1="{axis_y}" x2="{spot.x:.1f}" '
                f'y2="{top + 32 if up else top}" stroke="{LINE}"/>'
                f"{_text(spot.lo, top + 11, [when], size=11, fill=MUTED, extra=HALO)}"
                f"{_text(spot.lo, top + 27, [short], extra=HALO)}"
            )
        dot = f'<circle cx="{spot.x:.1f}" cy="{axis_y}" r="4.5" fill="{INK}"/>'
        body.append("".join(parts) + dot + "</g>")
    for (name, colour, _), mark, spot, row in zip(moments, marks, mark_at, mark_rows, strict=True):
        body.append(
            f'<g class="moment moment-{name.lower()}"><path d="M{spot.x:.1f},{axis_y - 8} l8,8 '
            f'l-8,8 l-8,-8 z" fill="{colour}" stroke="#ffffff"/>'
            f"{_text(spot.lo + 2, band - 6 - row * 20, [mark], fill=colour, extra=BOLD + HALO)}</g>"
        )
    if not ordered:
        body.append(_text(left, height - 18, ["No timeline entries"], fill=MUTED))
    start_x = x_of(started_at)
    for i, ((label, td), (*_, colour, at)) in enumerate(zip(spans, moments[1:], strict=True)):
        y, end_x, text = bars_y + i * 34, x_of(at), f"{label.capitalize()}: {format_duration(td)}"
        lo = min(max(min(start_x, end_x), 6.0), width - 6.0 - _width(text, 12))
        body.append(
            f'<g class="duration">{_text(lo, y + 12, [text], fill=colour, extra=BOLD + HALO)}'
            f'<rect x="{min(start_x, end_x):.1f}" y="{y + 18}" height="6" rx="3" fill="{colour}" '
            f'width="{max(abs(end_x - start_x), 3):.1f}"/></g>'
        )
    summary = "; ".join(f"{label} {format_duration(td)}" for label, td in spans)
    desc = f"Timeline from {stamp(first)} to {stamp(t1)} UTC, {len(ordered)} entries. {summary}"
    return _svg(width, height, "Incident timeline", desc, body)
