"""The change feed: deploys, configuration changes and feature-flag flips, newest first.

A change with the sender's `external_id` is stored once: the same id again is a repeat and
returns the stored change. A change on a service no incident or postmortem names is stored and
flagged (`known_service` false).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, or_, select

from rca.domain import new_id
from rca.domain.change import ChangeEvent, ChangeKind, StoredChange
from rca.store.engine import read_transaction
from rca.store.integration_tables import changes
from rca.store.services_seen import known
from rca.store.writes import now, writing


def _change(row: Any) -> StoredChange:
    return StoredChange(
        id=row.id,
        kind=ChangeKind(row.kind),
        service=row.service,
        at=row.at,
        summary=row.summary,
        version=row.version,
        link=row.link,
        actor=row.actor,
        external_id=row.external_id,
        source=row.source,
        known_service=row.known_service,
        created_at=row.created_at,
    )


def record_change_in(
    conn: Connection, event: ChangeEvent, source: str
) -> tuple[StoredChange, bool]:
    """Store a change inside the caller's write transaction; (the change, whether it is new)."""
    if event.external_id is not None:
        row = conn.execute(
            select(changes).where(changes.c.external_id == event.external_id)
        ).one_or_none()
        if row is not None:
            return _change(row), False
    values = {
        "id": new_id("chg"),
        "external_id": event.external_id,
        "kind": event.kind.value,
        "service": event.service,
        "at": event.at,
        "summary": event.summary,
        "version": event.version,
        "link": event.link,
        "actor": event.actor,
        "source": source[:100],
        "known_service": known(conn, event.service),
        "created_at": now(),
    }
    conn.execute(insert(changes).values(**values))
    return _change(conn.execute(select(changes).where(changes.c.id == values["id"])).one()), True


def record_change(engine: Engine, event: ChangeEvent, source: str) -> tuple[StoredChange, bool]:
    """Store a change in one transaction (see `record_change_in`)."""
    with writing(engine) as conn:
        return record_change_in(conn, event, source)


def change_page(
    engine: Engine,
    limit: int,
    after: tuple[datetime, str] | None = None,
    services: Sequence[str] = (),
    kinds: Sequence[ChangeKind] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[StoredChange]:
    """Up to `limit` changes, newest first, after the (at, id) of the last one seen, filtered
    by service (any of them), kind and time."""
    query = select(changes)
    if after is not None:
        at, ident = after
        query = query.where(or_(changes.c.at < at, and_(changes.c.at == at, changes.c.id > ident)))
    if services:
        query = query.where(changes.c.service.in_(list(services)))
    if kinds:
        query = query.where(changes.c.kind.in_([k.value for k in kinds]))
    if since is not None:
        query = query.where(changes.c.at >= since)
    if until is not None:
        query = query.where(changes.c.at <= until)
    query = query.order_by(changes.c.at.desc(), changes.c.id).limit(limit)
    with read_transaction(engine) as conn:
        return [_change(r) for r in conn.execute(query).all()]


def changes_between(
    engine: Engine, services: Sequence[str], start: datetime, end: datetime, limit: int
) -> list[StoredChange]:
    """The changes on `services` from `start` to `end`, the latest `limit` of them, oldest
    first (what drafting attaches to an incident)."""
    if not services:
        return []
    found = change_page(engine, limit, services=services, since=start, until=end)
    return sorted(found, key=lambda c: (c.at, c.id))


class ChangeFeed:
    """The change feed of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, event: ChangeEvent, source: str) -> tuple[StoredChange, bool]:
        """Store a change; (the change, whether it is new) — see `record_change_in`."""
        return record_change(self.engine, event, source)

    def page(
        self,
        limit: int,
        after: tuple[datetime, str] | None = None,
        services: Sequence[str] = (),
        kinds: Sequence[ChangeKind] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[StoredChange]:
        """Changes, newest first, a page at a time (see `change_page`)."""
        return change_page(self.engine, limit, after, services, kinds, since, until)

    def between(
        self, services: Sequence[str], start: datetime, end: datetime, limit: int
    ) -> list[StoredChange]:
        """The latest `limit` changes on `services` from `start` to `end`, oldest first."""
        return changes_between(self.engine, services, start, end, limit)
