"""The periodic digest: when a period ends, one `digest.ready` event with the digest of that
period is queued for the subscriptions that want it.

Periods are `RCA_OUTBOUND__DIGEST_EVERY_S` long (a week by default; 0 turns digests off),
counted from Monday 1970-01-05 00:00 UTC shifted by `RCA_OUTBOUND__DIGEST_OFFSET_S`, so weekly
periods run Monday to Monday. The webhook senders call `tick` as they poll: once the latest
period has ended and no record of it exists, the digest is built (outside any write) and then
queued in one write transaction with the period's record (`rca.store.digest_runs`), so any
number of senders in any number of processes, and restarts, queue it exactly once. Only the
latest ended period is queued (after a week of downtime, last week's digest, not a backlog),
and only to subscriptions created before it ended (a subscription made on Wednesday gets its
first digest the next Monday).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from rca.config import Settings
from rca.insights import digest_render
from rca.insights.digest import build
from rca.redaction import Redactor
from rca.store import Store, digest_runs

log = logging.getLogger("rca.webhooks")

ANCHOR = datetime(1970, 1, 5, tzinfo=UTC)
"""A Monday, midnight UTC: where periods are counted from."""
EVENT_LIMIT = 20
"""Entries of each section in an event (the rest: `more`, and the full digest from the API)."""
RETRY_S = 60.0
"""After a failure (the store briefly unavailable, say), the wait before trying again."""


def period_before(at: datetime, every_s: int, offset_s: int = 0) -> tuple[datetime, datetime]:
    """The latest period [start, end) that ended at or before `at`."""
    every = timedelta(seconds=every_s)
    anchor = ANCHOR + timedelta(seconds=offset_s)
    end = anchor + every * ((at - anchor) // every)
    return end - every, end


def event_data(
    store: Store, settings: Settings, start: datetime, end: datetime, made: datetime
) -> dict[str, Any]:
    """The `digest.ready` payload: the window, the digest made at `made` (its lists cut to
    `EVENT_LIMIT`, with totals), the same as Markdown for chat, and where the whole digest
    is."""
    redactor = Redactor(ip_addresses=settings.redaction.ip_addresses)
    found = build(store, start, end, now=made, limit=EVENT_LIMIT, redactor=redactor)
    query = {"since": _iso(start), "until": _iso(end)}
    return {
        "since": _iso(start),
        "until": _iso(end),
        "every_s": int((end - start).total_seconds()),
        "digest": found.model_dump(mode="json"),
        "markdown": digest_render.markdown(found),
        "links": {
            "digest": f"/v1/digest?{urlencode(query)}",
            "html": f"/v1/digest?{urlencode({**query, 'format': 'html'})}",
        },
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class DigestSchedule:
    """Queues each period's digest once; shared by the senders of one process."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.every_s = settings.outbound.digest_every_s
        self.offset_s = settings.outbound.digest_offset_s
        self._lock = threading.Lock()
        self._done: datetime | None = None
        """The end of the latest period known to be dealt with (queued, or nobody wants it)."""
        self._retry_at: datetime | None = None

    @property
    def on(self) -> bool:
        """Whether digests are sent at all."""
        return self.every_s > 0

    def tick(self, at: datetime) -> list[str] | None:
        """Queue the digest of the latest period ended by `at` if nobody has: the ids of the
        messages queued, or None when nothing was queued now. Another thread of this process
        already at it makes this one return at once."""
        if not self.on:
            return None
        start, end = period_before(at, self.every_s, self.offset_s)
        if end == self._done or (self._retry_at is not None and at < self._retry_at):
            return None
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._queue(start, end, at)
        except Exception:
            self._retry_at = at + timedelta(seconds=RETRY_S)
            raise
        finally:
            self._lock.release()

    def _queue(self, start: datetime, end: datetime, at: datetime) -> list[str] | None:
        engine = self.store.engine
        if end == self._done:
            return None
        if digest_runs.queued(engine, end) or not digest_runs.wanted(engine):
            # A subscription made from now on was made after the period ended: it does not
            # get this period's digest, so nothing is left to do until the next one.
            self._done = end
            return None
        data = event_data(self.store, self.settings, start, end, at)
        queued = digest_runs.queue_once(engine, start, end, data)
        self._done = end
        self._retry_at = None
        if queued is not None:
            log.info(
                "digest of %s to %s queued for %d subscription(s) (at %s)",
                _iso(start),
                _iso(end),
                len(queued),
                _iso(at),
            )
        return queued
