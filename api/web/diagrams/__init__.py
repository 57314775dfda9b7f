"""Server-side SVG pictures for the reviewer UI: causal chain, fishbone, incident timeline and
the insights charts.

Each function returns one self-contained `<svg>` element (no script, no link, no external font or
image) that a page can inline. Every piece of text comes from an incident or from a model and is
untrusted: it is stripped of bidi and control characters, folded onto one line, XML-escaped, and
only ever written as text content or a quoted attribute value (`svg` holds those primitives).
Layout is deterministic: equal input, equal output. Text widths are estimated, not measured, so
boxes are a little generous.

`chain`, `fishbone` and `timeline` draw one picture each; the timeline module also holds the
duration helpers (`format_duration`, `durations`); `charts` draws the Insights page's line and
bar charts.
"""

from __future__ import annotations

from api.web.diagrams.chain import causal_chain_svg
from api.web.diagrams.fishbone import fishbone_svg
from api.web.diagrams.timeline import durations, format_duration, timeline_svg

__all__ = ["causal_chain_svg", "durations", "fishbone_svg", "format_duration", "timeline_svg"]
