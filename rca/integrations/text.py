"""Untrusted text from other tools, made safe to keep: one line, no control characters,
clipped with an ellipsis; links kept only when they are plain http(s) (never fetched)."""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
"""Control characters (C0 but tab and line breaks, DEL, C1 but NEL)."""
_SPACE = re.compile(r"\s+")


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def line(value: str | None, limit: int) -> str | None:
    """One line: control characters dropped, runs of white space made one space, clipped;
    None for nothing left."""
    if value is None:
        return None
    text = _SPACE.sub(" ", CONTROL.sub("", value)).strip()
    return clip(text, limit) or None


def http_url(value: str | None, limit: int) -> str | None:
    """An http(s) link as sent, or None (other schemes, spaces, control characters, or longer
    than `limit`)."""
    if value is None or len(value) > limit or _SPACE.search(value) or CONTROL.search(value):
        return None
    return value if value.lower().startswith(("https://", "http://")) else None
