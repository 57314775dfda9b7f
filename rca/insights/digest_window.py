"""The window of a digest as people write it: `--since 7d`, `since=2026-03-01`,
`until=2026-03-08T09:00:00+01:00`; durations count back from now."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from rca.errors import InvalidArgument

MAX_WINDOW_DAYS = 366
"""The longest window a digest covers."""

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 12, 31, tzinfo=UTC)
"""The times a window may start and end between."""

_DURATION = re.compile(r"([0-9]{1,6})\s*([hdw])", re.IGNORECASE)
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def moment(value: str, now: datetime, name: str) -> datetime:
    """`value` as a time: a duration before `now` (`24h`, `7d`, `2w`), a date (its midnight,
    UTC) or a time with an offset. InvalidArgument, naming `name`, for anything else."""
    text = value.strip()
    found = _DURATION.fullmatch(text)
    if found is not None:
        count = int(found.group(1))
        if count == 0:
            raise InvalidArgument(f"{name} must be a positive duration, like 7d")
        span = _UNITS[found.group(2).lower()] * count
        if span > timedelta(days=10 * MAX_WINDOW_DAYS):
            raise InvalidArgument(f"{name} reaches back too far ({text})")
        return now - span
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None:
        raise InvalidArgument(
            f"{name} must be a duration (7d, 24h, 2w), a date (2026-03-01) or a time with an "
            f"offset (2026-03-01T09:00:00Z); got {value[:40]!r}"
        )
    if at.tzinfo is None:
        raise InvalidArgument(f"{name} needs an offset, like {text[:40]}Z")
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise InvalidArgument(f"{name} is out of range") from None


def window(
    since: str, until: str | None, now: datetime, names: tuple[str, str] = ("since", "until")
) -> tuple[datetime, datetime]:
    """The window [since, until) the user asked for (`until`: now by default)."""
    start = moment(since, now, names[0])
    end = now if until is None else moment(until, now, names[1])
    for at, name in ((start, names[0]), (end, names[1])):
        if not EARLIEST <= at <= LATEST:
            raise InvalidArgument(f"{name} must be between {EARLIEST:%Y} and {LATEST:%Y}")
    if end <= start:
        raise InvalidArgument(f"{names[0]} must be before {names[1]}")
    if end - start > timedelta(days=MAX_WINDOW_DAYS):
        raise InvalidArgument(f"a digest covers at most {MAX_WINDOW_DAYS} days")
    return start, end
