"""What every picture is made of: the colours and font, untrusted text made safe (cleaned, wrapped,
XML-escaped), `<text>` and `<title>` elements, and the root `<svg>` element around a drawing.

Untrusted text reaches a picture only through `text`, `title` and `document`, which clean and
escape it; ids and class names go through `safe_id`.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from xml.sax.saxutils import escape

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
INK, MUTED, LINE = "#101828", "#475467", "#98a2b3"
BOLD = ' font-weight="bold"'
HALO = ' stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"'
_DROP = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufffe\uffff"
    "\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"  # zero-width
)
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def clean(text: str) -> str:
    """Untrusted text as one plain line: bidi controls, control and zero-width characters, lone
    surrogates and non-characters removed, whitespace folded to single spaces."""
    kept = (
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or (ch not in _DROP and unicodedata.category(ch) not in ("Cc", "Cs"))
    )
    return " ".join("".join(kept).split())


def width(text: str, size: float) -> float:
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
        if width(candidate, size) <= max_w:
            current = candidate
            continue
        if current:
            lines.append(current)
        while width(word, size) > max_w and len(lines) <= max_lines:  # too wide: hard split
            cut = min(len(word) - 1, int(max_w / (0.6 * size)))  # no character is narrower
            while cut > 1 and width(word[:cut], size) > max_w:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    lines.append(current)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and width(last + "…", size) > max_w:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last.rstrip() + "…"]
    return lines


def text(
    x: float, y: float, lines: Sequence[str], *, size: int = 12, fill: str = INK, extra: str = ""
) -> str:
    """A `<text>` element, one `<tspan>` per line; `extra` holds trusted attributes only."""
    step = round(size * 1.25)
    spans = "".join(
        f'<tspan x="{x:.1f}" dy="{step if i else 0}">{escape(clean(line))}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}"{extra}>{spans}</text>'


def title(full: str) -> str:
    """A `<title>` child: the full text, shown on hover."""
    return f"<title>{escape(clean(full))}</title>"


def document(w: float, h: float, name: str, desc: str, body: Sequence[str]) -> str:
    """The root element, with an accessible name and description, around `body`."""
    w, h = math.ceil(w), math.ceil(h)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
        f'height="{h}" role="img" font-family="{FONT}">{title(name)}'
        f'<desc>{escape(clean(desc))}</desc><rect width="{w}" height="{h}" fill="#ffffff"/>'
        f"{''.join(body)}</svg>"
    )


def empty(name: str, message: str) -> str:
    """A small picture that says there is nothing to draw."""
    return document(320, 56, name, message, [text(16, 33, [message], size=13, fill=MUTED)])


def safe_id(value: str) -> str:
    """An id or class name limited to letters, digits and `_ . -` (ids are validated already)."""
    return "".join(c if c in _ID_CHARS else "_" for c in value)
