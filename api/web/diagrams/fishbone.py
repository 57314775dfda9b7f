"""The contributing factors as an Ishikawa (fishbone) diagram: a bone per factor category,
alternating above and below the spine, each factor a labelled twig, the effect in the head.
"""

from __future__ import annotations

from collections.abc import Sequence

from api.web.diagrams import svg
from api.web.diagrams.svg import BOLD, INK, LINE
from rca.domain import ContributingFactor, FactorCategory

_PALETTE = ("#b42318", "#6941c6", "#026aa2", "#05603a", "#93370d", "#c11574")
CATEGORY_COLOUR = dict(zip(FactorCategory, _PALETTE, strict=False))

SLOPE, TWIG_W, LH = 0.5, 220, 15  # bone run per unit of rise, factor text width, line height


def _bone(factors: Sequence[ContributingFactor], *, top: bool) -> tuple[str, float, float, float]:
    """One category's bone, drawn from its foot on the spine at (0, 0): the category label at
    its end, each factor as text sitting on a twig line, clear of the bone. Returns the markup,
    the bone's rise, and how far its drawing reaches left and right of the foot."""
    category, sign = factors[0].category, -1 if top else 1
    parts, rise, reach = [], 22.0, 0.0
    for factor in factors:
        lines = svg.wrap(factor.text, TWIG_W, 12, 4)
        block = len(lines) * LH
        twig = rise if top else rise + block  # distance of the twig line from the spine
        far = twig + block + 2 if top else twig  # the text's edge farthest from the spine
        start = -(far * SLOPE + 8 + max(svg.width(line, 12) for line in lines))
        parts.append(
            f'<g class="factor">{svg.title(factor.text)}<line x1="{start:.1f}" y1="{sign * twig}" '
            f'x2="{-twig * SLOPE:.1f}" y2="{sign * twig}" stroke="{LINE}" stroke-width="1.5"/>'
            f"{svg.text(start, sign * twig - 5 - (len(lines) - 1) * LH, lines)}</g>"
        )
        rise, reach = (far if top else twig) + 12, max(reach, -start)
    name, colour = svg.safe_id(category.value), CATEGORY_COLOUR.get(category, INK)
    label_w, end_x, end_y = svg.width(name, 12) + 18, -(rise + 4) * SLOPE, sign * (rise + 4)
    label_x, label_y = end_x - label_w / 2, end_y - 22 if top else end_y + 4
    parts.insert(
        0,
        f'<line x1="0" y1="0" x2="{end_x:.1f}" y2="{end_y:.1f}" stroke="{colour}" '
        f'stroke-width="2"/><rect x="{label_x:.1f}" y="{label_y:.1f}" width="{label_w:.1f}" '
        f'height="18" rx="9" fill="{colour}"/>'
        + svg.text(label_x + 9, label_y + 13, [name.title()], fill="#ffffff", extra=BOLD),
    )
    markup = f'<g class="bone category-{name}" data-category="{name}">{"".join(parts)}</g>'
    return markup, rise + 4, max(reach, -label_x), max(0.0, label_x + label_w)


def fishbone_svg(factors: Sequence[ContributingFactor], *, effect: str) -> str:
    """An Ishikawa diagram: a bone per category that has factors, alternating above and below
    the spine, each factor a labelled twig, and the effect in the head on the right."""
    title = "Contributing factors"
    if not factors:
        return svg.empty(title, "No contributing factors")
    groups = [fs for c in FactorCategory if (fs := [f for f in factors if f.category == c])]
    bones = [_bone(fs, top=i % 2 == 0) for i, fs in enumerate(groups)]
    head_lines = svg.wrap(effect, 190, 13, 6)
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
        f'<g class="effect">{svg.title(effect)}<rect x="{x:.1f}" y="{spine_y - head_h / 2:.1f}" '
        f'width="210" height="{head_h}" rx="10" fill="#fee4e2" stroke="#b42318" stroke-width="2"/>'
        f"{svg.text(x + 10, spine_y - head_h / 2 + 25, head_lines, size=13, extra=BOLD)}</g>"
    )
    bottom_h = max([head_h / 2 + 8] + [rise + 26 for _, rise, *_ in bones[1::2]])
    desc = f"Effect: {effect}. " + "; ".join(f"{fs[0].category}: {len(fs)}" for fs in groups)
    return svg.document(x + 226, spine_y + bottom_h + 12, title, desc, body)
