"""What a provider's failure says, made fit for a call record: the wait it asked for
(`retry_after_s`) and the error as one line a reviewer reads (`error_line`), without tracebacks,
file paths or the SDK's response dumps."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_PATH = re.compile(r"(?<![\w:/.])(?:[A-Za-z]:)?(?:[\\/][\w.@+~-]+){2,}")
"""A file path (`/srv/rca/models/x.gguf`): the server's layout, not for a reviewer."""
_SDK_NOISE = re.compile(r",? Received response - <.*$")
"""What litellm appends to a body it could not parse: the SDK's repr of the response."""
ERROR_CHARS = 200
"""Longest error line kept on a call record."""


def retry_after_s(err: BaseException) -> float | None:
    """The wait a provider's error answer asked for, in seconds: `Retry-After-Ms`, else
    `Retry-After` (seconds or an HTTP date); None when it asked for none."""
    headers: dict[str, str] = {}
    response = getattr(err, "response", None)
    for found in (
        getattr(response, "headers", None),
        getattr(err, "litellm_response_headers", None),
    ):
        if isinstance(found, Mapping):
            headers.update({str(k).lower(): str(v) for k, v in found.items()})
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        if "retry-after" not in headers:
            return None
        value = headers["retry-after"].strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", value):
            return float(value)
        when = parsedate_to_datetime(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_line(err: BaseException, why: str = "") -> str:
    """`err` as one line a reviewer reads: its type and the first line of its message, without
    the traceback or file paths a provider may have folded into the message; then `why`."""
    name = type(err).__name__
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    if first.startswith("Traceback (most recent call last)"):
        first = ""
    repeated = re.compile(rf"(?:litellm\.)?{re.escape(name)}\s*:\s*")
    while (prefix := repeated.match(first)) is not None:  # litellm repeats the type
        first = first[prefix.end() :]
    first = _no_paths(first)
    first = _SDK_NOISE.sub("", first)
    if first.endswith("Connection error.") and (inner := _innermost(err)):
        first += f" ({inner})"  # what the HTTP library saw: refused, reset, cut off
    first += why
    line = f"{name}: {first}" if first else name
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1].rstrip() + "…"


def _innermost(err: BaseException) -> str:
    """The first line of the innermost exception `err` was raised from ("" if none)."""
    seen: set[int] = set()
    inner: BaseException | None = None
    link = err.__cause__ or err.__context__
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        inner, link = link, link.__cause__ or link.__context__
    lines = str(inner).strip().splitlines() if inner is not None else []
    return _no_paths(lines[0]) if lines else ""


def _no_paths(text: str) -> str:
    """`text` with each file path cut to its last part."""
    return _PATH.sub(lambda path: "…/" + re.split(r"[\\/]", path[0])[-1], text)
