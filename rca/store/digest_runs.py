"""The periodic digest's record: which periods' `digest.ready` events were queued (one row per
period, its end the key), so that restarts and any number of senders, in any number of
processes, queue exactly one per period.

Declared on the same `metadata` as `rca.store.engine`'s tables (migration 0011 creates the
table, and an index of incidents by when they were first recorded, which the digest reads).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Engine, Index, Integer, Table, insert, select

from rca.errors import Conflict
from rca.store.engine import UTCDateTime, incidents, metadata, read_transaction
from rca.store.webhook_tables import WebhookEvent
from rca.store.webhooks import enqueue, subscribed
from rca.store.writes import now, writing

digest_runs = Table(
    "digest_runs",
    metadata,
    Column("period_end", UTCDateTime, primary_key=True),
    Column("period_start", UTCDateTime, nullable=False),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("messages", Integer, nullable=False),
)
"""One row per digest period whose event was queued: the period [start, end), when, and how
many messages (one per subscription that wanted it and existed before the period ended)."""

Index("ix_incidents_created_at", incidents.c.created_at)
"""Incidents by when they were first recorded (the digest lists those recorded in its window)."""


def queued(engine: Engine, period_end: datetime) -> bool:
    """Whether the digest of the period ending at `period_end` was queued already."""
    with read_transaction(engine) as conn:
        found = conn.execute(
            select(digest_runs.c.period_end).where(digest_runs.c.period_end == period_end)
        ).first()
    return found is not None


def wanted(engine: Engine) -> bool:
    """Whether any active subscription wants `digest.ready` (to skip building a digest)."""
    with read_transaction(engine) as conn:
        return subscribed(conn, WebhookEvent.DIGEST_READY)


def queue_once(
    engine: Engine, period_start: datetime, period_end: datetime, data: dict[str, Any]
) -> list[str] | None:
    """Queue `digest.ready` with `data` for the period [period_start, period_end), in one write
    transaction with the period's record: the ids of the messages queued (one per active
    subscription that wants it and was created before the period ended; maybe none), or None
    when the period's digest was queued already, by this process or another."""
    try:
        with writing(engine) as conn:
            done = conn.execute(
                select(digest_runs.c.period_end).where(digest_runs.c.period_end == period_end)
            ).first()
            if done is not None:
                return None
            ids = enqueue(conn, WebhookEvent.DIGEST_READY, data, subscribed_before=period_end)
            conn.execute(
                insert(digest_runs).values(
                    period_end=period_end,
                    period_start=period_start,
                    queued_at=now(),
                    messages=len(ids),
                )
            )
            return ids
    except Conflict:  # another process recorded the period first (a database without a lock)
        if queued(engine, period_end):
            return None
        raise
