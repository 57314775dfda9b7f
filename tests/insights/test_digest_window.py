"""A digest's window as people write it: durations back from now, dates, times with an offset;
every bad value refused with the reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from rca.errors import InvalidArgument
from rca.insights.digest_window import moment, window

DAY = timedelta(days=1)

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7d", NOW - 7 * DAY),
        ("24h", NOW - timedelta(hours=24)),
        ("2w", NOW - 14 * DAY),
        (" 3D ", NOW - 3 * DAY),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T09:00:00Z", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("2026-03-01T09:00:00+02:00", datetime(2026, 3, 1, 7, tzinfo=UTC)),
    ],
)
def test_the_window_is_written_as_a_duration_a_date_or_a_time(
    value: str, expected: datetime
) -> None:
    assert moment(value, NOW, "--since") == expected


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("yesterday", None, "--since must be a duration (7d, 24h, 2w), a date"),
        ("0d", None, "--since must be a positive duration"),
        ("7x", None, "--since must be a duration"),
        ("-7d", None, "--since must be a duration"),
        ("2026-03-01T09:00", None, "--since needs an offset"),
        ("2026-02-30", None, "--since must be a duration"),
        ("400d", None, "a digest covers at most 366 days"),
        ("999999w", None, "--since reaches back too far"),
        ("1d", "2d", "--since must be before --until"),
        ("2026-03-05", "2026-03-05", "--since must be before --until"),
        ("1969-12-25", "1970-01-02", "--since must be between 1970 and 2200"),
        ("0001-01-01T00:00:00+01:00", None, "--since is out of range"),
    ],
)
def test_a_bad_window_is_refused_with_a_clear_reason(
    since: str, until: str | None, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        window(since, until, NOW, ("--since", "--until"))


def test_the_window_defaults_to_now_and_accepts_a_past_range() -> None:
    assert window("7d", None, NOW) == (NOW - 7 * DAY, NOW)
    assert window("14d", "7d", NOW) == (NOW - 14 * DAY, NOW - 7 * DAY)
