"""The causal chain as a left-to-right layered picture: a column per node kind in causal order
(root causes first, impact last), boxes placed by barycentre sweeps, links as arrows between them.

The layout takes time and space in proportion to the nodes and links (and a log factor for
sorting), never to their square: longest paths by one depth-first pass, one pass per sweep, and
a link that skips many columns is drawn straight instead of through a placeholder in each one.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from api.web.diagrams import svg
from api.web.diagrams.svg import BOLD, MUTED
from rca.domain import CausalNode, NodeKind

# Node kinds in causal order (the enum's order): fill, stroke and label colour, label.
_KIND_STYLE: dict[NodeKind, tuple[str, str, str]] = {
    NodeKind.ROOT_CAUSE: ("#fee4e2", "#b42318", "Root cause"),
    NodeKind.CONTRIBUTING_FACTOR: ("#fef0c7", "#93370d", "Contributing factor"),
    NodeKind.TRIGGER: ("#f4ebff", "#6941c6", "Trigger"),
    NodeKind.CAUSE: ("#e0f2fe", "#026aa2", "Cause"),
    NodeKind.SYMPTOM: ("#d1fadf", "#05603a", "Symptom"),
    NodeKind.IMPACT: ("#f2f4f7", "#344054", "Impact"),
}

BOX_W, GAP_X, GAP_Y, MARGIN = 184, 64, 18, 16
MAX_ROUTED_SKIP = 12
"""A link skipping more columns than this is drawn straight, not routed between the boxes
(each skipped column would need a placeholder: links times columns in all)."""
PLACEHOLDERS_PER_NODE = 4
"""Placeholders in all, per node: once they are spent, further long links are drawn straight."""
Edge = tuple[str, str]


def _depths(nodes: dict[str, CausalNode], same: Sequence[Edge]) -> dict[str, int]:
    """Longest path to each node over `same`, the links inside one kind. One depth-first pass
    (in input order) sets aside the links that close a cycle; the rest are relaxed in reverse
    finishing order, a topological order of them."""
    after: dict[str, list[str]] = {}
    for a, b in same:
        after.setdefault(a, []).append(b)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    finished: list[str] = []
    kept: dict[str, list[str]] = {}  # the links that close no cycle
    for start in nodes:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(after.get(start, ())))]
        while stack:
            key, targets = stack[-1]
            for target in targets:
                if state.get(target) == 1:
                    continue  # closes a cycle: drawn, but no depth through it
                kept.setdefault(key, []).append(target)
                if target not in state:
                    state[target] = 1
                    stack.append((target, iter(after.get(target, ()))))
                    break
            else:
                state[key] = 2
                finished.append(key)
                stack.pop()
    depth = dict.fromkeys(nodes, 0)
    for key in reversed(finished):
        for target in kept.get(key, ()):
            depth[target] = max(depth[target], depth[key] + 1)
    return depth


def _columns(nodes: dict[str, CausalNode], edges: Sequence[Edge]) -> dict[str, int]:
    """Column per node: kinds in causal order, a chain inside one kind over sub-columns."""
    rank = {kind: i for i, kind in enumerate(NodeKind)}
    depth = _depths(nodes, [(a, b) for a, b in edges if nodes[a].kind == nodes[b].kind])
    keys = sorted({(rank[n.kind], depth[i]) for i, n in nodes.items()})
    index = {key: c for c, key in enumerate(keys)}
    return {i: index[rank[n.kind], depth[i]] for i, n in nodes.items()}


def _layout(
    nodes: dict[str, CausalNode], edges: Sequence[Edge]
) -> tuple[dict[str, int], list[list[str]], list[list[str]]]:
    """Columns of nodes and placeholders, and each forward edge as the chain of keys it passes:
    a placeholder (`~edge:column`) in every column it skips, so edges run between the boxes
    (none for an edge skipping more than `MAX_ROUTED_SKIP` columns, or once the picture's
    `PLACEHOLDERS_PER_NODE` budget is spent: such an edge is drawn straight)."""
    col = _columns(nodes, edges)
    columns: list[list[str]] = [[] for _ in range(max(col.values()) + 1)]
    for node_id in nodes:
        columns[col[node_id]].append(node_id)
    chains: list[list[str]] = []
    near: tuple[dict[str, list[str]], ...] = ({}, {})  # keys before and after each on a chain
    budget = PLACEHOLDERS_PER_NODE * len(nodes)
    for i, (a, b) in enumerate(e for e in edges if col[e[0]] < col[e[1]]):
        skip = col[b] - col[a] - 1
        routed = skip <= min(MAX_ROUTED_SKIP, budget)
        budget -= skip if routed else 0
        skipped = range(col[a] + 1, col[b]) if routed else range(0)
        chains.append([a, *(f"~{i}:{c}" for c in skipped), b])
        for c in skipped:
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
        f'<g class="node node-{svg.safe_id(node.kind.value)}" '
        f'data-node-id={quoteattr(svg.safe_id(node.id))} transform="translate({x:.1f},{y:.1f})">'
        f'{svg.title(node.text)}<rect width="{BOX_W}" height="{height:.1f}" rx="8" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="1.5"/>'
        f"{svg.text(10, 17, [label.upper()], size=11, fill=stroke, extra=BOLD)}"
        f"{svg.text(10, 36, svg.wrap(node.text, BOX_W - 20, 12, 4))}</g>"
    )


def _edge(src: str, dst: str, path: str, arrow: str, *, dashed: bool) -> str:
    """A link drawn as `path`, ending in the arrowhead marker `arrow`."""
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    return (
        f'<path class="edge" data-source={quoteattr(svg.safe_id(src))} '
        f'data-target={quoteattr(svg.safe_id(dst))} d="{path}" fill="none" stroke="{MUTED}" '
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
        return svg.empty(title, "No causal chain")
    links = ((n.id, t) for n in by_id.values() for t in n.leads_to if t in by_id and t != n.id)
    edges = list(dict.fromkeys(links))
    col, columns, chains = _layout(by_id, edges)
    box_h = 26 + max(len(svg.wrap(n.text, BOX_W - 20, 12, 4)) for n in by_id.values()) * 15 + 8
    heights = [sum(8 if k[0] == "~" else box_h for k in c) + GAP_Y * (len(c) - 1) for c in columns]
    tallest = max(heights)
    ys: dict[str, float] = {}  # vertical centre of every node and placeholder
    for column, height in zip(columns, heights, strict=True):
        y = MARGIN + (tallest - height) / 2
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
    return svg.document(width, MARGIN * 2 + tallest, title, desc, body)
