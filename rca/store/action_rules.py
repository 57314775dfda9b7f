"""The rules of action-item follow-up: an item's stable key, its due date, when it is overdue,
and what a tracker reference may be.

**The key.** An item is known by the first 12 hex digits of the SHA-256 of its normalised text
(Unicode NFKC, case-folded, runs of whitespace made one space, trailing full stops and spaces
dropped); the second item of one postmortem with the same normalised text gets `-2`, the third
`-3`, in order of position. So a later revision that reorders items, or changes an item's
kind, priority or owner, or only its case, spacing or final full stop, keeps each item's status,
due date, tracker reference and history. A reworded text is a new item (it starts open, with
the document's status); the old one is kept, out of the lists, and comes back with everything
it had if a later revision restores its text. The kind is left out of the key on purpose:
moving an item from `detect` to `prevent` is a correction, not a new piece of work.

**The due date.** What a reviewer set, else the day the item first appeared (UTC) plus the days
for its priority (`ActionSettings`: must 14, should 30, could 90); a won't-have has none. An
item first appears with the revision that first holds it: when a reviewed draft is finalized
(source `draft:...`), that moment; when it comes in otherwise (an import, the API), the
postmortem's date (midnight UTC) if that is earlier, else that moment, so three years of
imported history are not all new and due in two weeks. The default is worked out when read, so
a changed setting applies to every item without a date of its own.
**Overdue**: open or in progress, due before today.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, and_, false, or_

from rca.config import ActionSettings
from rca.domain import ActionStatus, Priority
from rca.store.action_tables import action_items

OPEN = (ActionStatus.OPEN, ActionStatus.IN_PROGRESS)
"""Statuses of an item still to do."""
CLOSED = (ActionStatus.DONE, ActionStatus.WONT_DO)
"""Statuses of an item finished with."""
FINALIZED_PREFIX = "draft:"
"""How the source of a revision finalized from a reviewed draft starts (`draft:<draft id>`)."""
KEY_PATTERN = r"^[0-9a-f]{12}(-[1-9][0-9]{0,2})?$"
"""What an item key looks like."""
EARLIEST_DUE = date(1970, 1, 1)
"""The earliest due date accepted."""
LATEST_DUE = date(2200, 12, 31)
"""The latest due date accepted."""
MAX_TRACKER_KEY = 200
"""Longest tracker key (`PROJ-123`, `org/repo#45`)."""
MAX_TRACKER_URL = 2_000
"""Longest tracker URL."""


def normalised(text: str) -> str:
    """An item's text as its key sees it: NFKC, case-folded, whitespace collapsed, no final
    full stops."""
    folded = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return folded.rstrip(". ")


def item_keys(texts: Iterable[str]) -> list[str]:
    """The stable key of each item of one postmortem, in order (repeats get `-2`, `-3`...)."""
    seen: dict[str, int] = {}
    keys = []
    for text in texts:
        base = hashlib.sha256(normalised(text).encode("utf-8")).hexdigest()[:12]
        seen[base] = seen.get(base, 0) + 1
        keys.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return keys


def days_for(priority: Priority, actions: ActionSettings) -> int | None:
    """Days from an item's first appearance to its default due date (None: no due date)."""
    return {
        Priority.MUST: actions.must_days,
        Priority.SHOULD: actions.should_days,
        Priority.COULD: actions.could_days,
    }.get(priority)


def due_date(
    set_on: date | None, priority: Priority, appeared: datetime, actions: ActionSettings
) -> date | None:
    """The due date: the one set, else the default for the priority (None for won't)."""
    if set_on is not None:
        return set_on
    days = days_for(priority, actions)
    return None if days is None else appeared.astimezone(UTC).date() + timedelta(days=days)


def is_overdue(status: ActionStatus, due: date | None, today: date) -> bool:
    """Open or in progress, and due before today."""
    return status in OPEN and due is not None and due < today


def due_before(day: date, actions: ActionSettings) -> ColumnElement[bool]:
    """SQL: the item's due date (set, or the default for its priority) is before `day`. Never
    null, so it may be negated."""
    t = action_items.c
    terms = [and_(t.due_on.is_not(None), t.due_on < day)]
    for priority in Priority:
        days = days_for(priority, actions)
        if days is None:
            continue
        # appeared + days < day  ⟺  the UTC day it appeared < day - days
        cutoff = datetime.combine(day - timedelta(days=days), time(), UTC)
        terms.append(and_(t.due_on.is_(None), t.priority == priority.value, t.created_at < cutoff))
    return or_(false(), *terms)


def overdue_now(today: date, actions: ActionSettings) -> ColumnElement[bool]:
    """SQL: the item is overdue on `today` (open or in progress, due before it)."""
    return and_(action_items.c.status.in_([s.value for s in OPEN]), due_before(today, actions))


def due_problem(day: date) -> str | None:
    """Why a due date cannot be used, or None."""
    if not EARLIEST_DUE <= day <= LATEST_DUE:
        return f"a due date must be from {EARLIEST_DUE} to {LATEST_DUE}"
    return None


def _controls(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in text)


def tracker_key_problem(key: str) -> str | None:
    """Why a tracker key cannot be used, or None: 1 to 200 characters on one line, no
    control or formatting characters."""
    if not key.strip() or len(key) > MAX_TRACKER_KEY:
        return f"a tracker key must be 1 to {MAX_TRACKER_KEY} characters"
    if _controls(key):
        return "a tracker key must not hold control or formatting characters"
    return None


def tracker_url_problem(url: str) -> str | None:
    """Why a tracker URL cannot be used, or None: an http(s) URL with a host, no user or
    password, no spaces or control characters, at most 2,000 characters."""
    if len(url) > MAX_TRACKER_URL:
        return f"a tracker URL must be at most {MAX_TRACKER_URL} characters"
    if _controls(url) or any(c.isspace() for c in url):
        return "a tracker URL must not hold spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "a tracker URL must be a valid http or https URL"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return "a tracker URL must be an http or https URL with a host"
    if parts.username is not None or parts.password is not None:
        return "a tracker URL must not carry a user name or password"
    return None
