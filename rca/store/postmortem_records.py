"""Postmortems and their immutable revisions: saving (a changed postmortem becomes a new
revision, queued for indexing through the outbox), reading one revision or the latest ones,
and the fingerprint that changes with every new revision (listings and pages:
`rca.store.postmortem_pages`).

A stored revision never changes (the database refuses updates and deletes of revisions).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    insert,
    select,
    update,
)

from rca.domain import Postmortem, Severity, canonical_json, content_hash
from rca.errors import NotFound
from rca.store import audit, counters
from rca.store.action_sync import sync_action_items
from rca.store.engine import index_outbox, postmortem_revisions, postmortems, read_transaction
from rca.store.readback import SetAside, postmortem_from_stored
from rca.store.services_seen import note_services
from rca.store.writes import Outcome, SaveResult, insert_new, now, writing


@dataclass(frozen=True)
class StoredPostmortem:
    """A postmortem revision as stored."""

    postmortem: Postmortem
    revision: int
    latest_revision: int
    source: str
    created_at: datetime
    set_aside: tuple[SetAside, ...] = ()
    """What the stored document held that today's rules refuse, left out on reading."""


@dataclass(frozen=True)
class PostmortemSummary:
    """One row of a postmortem listing."""

    id: str
    title: str
    date: str | None
    severity: Severity | None
    latest_revision: int
    updated_at: datetime


@dataclass(frozen=True)
class RevisionInfo:
    """One revision's metadata."""

    revision: int
    content_hash: str
    source: str
    created_at: datetime


LATEST = and_(
    postmortems.c.id == postmortem_revisions.c.postmortem_id,
    postmortems.c.latest_revision == postmortem_revisions.c.revision,
)
"""Joins a postmortem to its latest revision."""


def save_postmortem_in(conn: Connection, pm: Postmortem, source: str) -> SaveResult:
    """Save a postmortem inside the caller's write transaction (a new revision if changed,
    queued for indexing through the outbox, its action items' rows brought in step)."""
    digest = content_hash(pm)
    stamp = now()
    head = _locked_head(conn, pm.id)
    if head is None:
        row = {**_head_values(pm, stamp, 1), "id": pm.id, "created_at": stamp}
        if insert_new(conn, postmortems, row):
            note_services(conn, pm.services)
            return _add_revision(conn, pm, digest, source, stamp, 1)
        # A concurrent writer saved it first (on PostgreSQL): this save revises what it saved.
        head = _locked_head(conn, pm.id)
        assert head is not None
    latest_hash = conn.execute(
        select(postmortem_revisions.c.content_hash).where(
            postmortem_revisions.c.postmortem_id == pm.id,
            postmortem_revisions.c.revision == head,
        )
    ).scalar_one()
    if latest_hash == digest:
        return SaveResult("postmortem", pm.id, Outcome.UNCHANGED, head)
    note_services(conn, pm.services)
    conn.execute(
        update(postmortems)
        .where(postmortems.c.id == pm.id)
        .values(**_head_values(pm, stamp, head + 1))
    )
    return _add_revision(conn, pm, digest, source, stamp, head + 1)


def _locked_head(conn: Connection, ident: str) -> int | None:
    """The postmortem's latest revision, its row locked until the transaction ends."""
    head: int | None = conn.execute(
        select(postmortems.c.latest_revision).where(postmortems.c.id == ident).with_for_update()
    ).scalar_one_or_none()
    return head


def _head_values(pm: Postmortem, stamp: datetime, revision: int) -> dict[str, Any]:
    """The postmortems row of `pm` at `revision`."""
    return {
        "title": pm.title,
        "date": pm.date,
        "severity": pm.severity.value if pm.severity else None,
        "incident_id": pm.incident_id,
        "updated_at": stamp,
        "latest_revision": revision,
    }


def _add_revision(
    conn: Connection, pm: Postmortem, digest: str, source: str, stamp: datetime, revision: int
) -> SaveResult:
    """Store revision `revision` (its summary row already says so), queue it for indexing and
    bring its action items' rows in step."""
    conn.execute(
        insert(postmortem_revisions).values(
            postmortem_id=pm.id,
            revision=revision,
            content_hash=digest,
            document=canonical_json(pm),
            source=source,
            created_at=stamp,
        )
    )
    counters.count_revision(conn)
    conn.execute(
        insert(index_outbox).values(postmortem_id=pm.id, revision=revision, created_at=stamp)
    )
    sync_action_items(conn, pm, stamp, source)
    outcome = Outcome.CREATED if revision == 1 else Outcome.REVISED
    return SaveResult("postmortem", pm.id, outcome, revision)


def import_postmortem(
    engine: Engine, postmortem: Postmortem, source: str, actor: str
) -> SaveResult:
    """Save one postmortem (a changed one becomes a new revision) and, when something was
    saved, record who did it in the audit trail, in the same transaction."""
    with writing(engine) as conn:
        saved = save_postmortem_in(conn, postmortem, source)
        if saved.outcome is not Outcome.UNCHANGED:
            audit.record(
                conn,
                actor,
                f"postmortem.{saved.outcome.value}",
                "postmortem",
                postmortem.id,
                revision=saved.revision,
                source=source,
            )
        return saved


_REVISION = (
    postmortem_revisions.c.revision,
    postmortem_revisions.c.document,
    postmortem_revisions.c.source,
    postmortem_revisions.c.created_at,
    postmortems.c.latest_revision,
)
_LATEST_ROW = (
    select(*_REVISION).join(postmortems, LATEST).where(postmortems.c.id == bindparam("ident"))
)
_REVISION_ROW = (
    select(*_REVISION)
    .join(postmortems, postmortems.c.id == postmortem_revisions.c.postmortem_id)
    .where(
        postmortem_revisions.c.postmortem_id == bindparam("ident"),
        postmortem_revisions.c.revision == bindparam("revision"),
    )
)
_HEAD = select(postmortems.c.latest_revision).where(postmortems.c.id == bindparam("ident"))
"""Statements built once: one built per call costs more than running it."""
_LARGEST = 2**31 - 1
"""The largest value of an Integer column on PostgreSQL (SQLite's hold more): a larger revision
cannot be stored, and asking for one would be a database error, not a 404."""
RevisionRow = Row[int, str, str, datetime, int]
"""A revision's number, document, source, time stored, and the latest revision's number."""


def get_postmortem(engine: Engine, ident: str, revision: int | None = None) -> StoredPostmortem:
    """One revision of a postmortem (the latest by default)."""
    with read_transaction(engine) as conn:
        row = revision_row(conn, ident, revision)
    return stored_postmortem(ident, row)


def revision_row(conn: Connection, ident: str, revision: int | None = None) -> RevisionRow:
    """The stored row of one revision of a postmortem (the latest by default)."""
    row = None
    if revision is None:
        row = conn.execute(_LATEST_ROW, {"ident": ident}).one_or_none()
    elif revision <= _LARGEST:  # a larger one is no revision (and more than a column holds)
        row = conn.execute(_REVISION_ROW, {"ident": ident, "revision": revision}).one_or_none()
    if row is None:
        head = conn.execute(_HEAD, {"ident": ident}).scalar_one_or_none()
        if head is None:
            raise NotFound("postmortem", ident)
        raise NotFound("postmortem revision", f"{ident}@{head if revision is None else revision}")
    return row


def stored_postmortem(ident: str, row: RevisionRow) -> StoredPostmortem:
    """The revision a `revision_row` holds, read back (see `rca.store.readback`)."""
    revision, document, source, created_at, latest = row
    postmortem, set_aside = postmortem_from_stored(ident, document)
    return StoredPostmortem(
        postmortem=postmortem,
        revision=revision,
        latest_revision=latest,
        source=source,
        created_at=created_at,
        set_aside=tuple(set_aside),
    )


def revisions(engine: Engine, ident: str) -> list[RevisionInfo]:
    """Every revision of one postmortem, oldest first."""
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(postmortem_revisions)
            .where(postmortem_revisions.c.postmortem_id == ident)
            .order_by(postmortem_revisions.c.revision)
        ).all()
    if not rows:
        raise NotFound("postmortem", ident)
    return [RevisionInfo(r.revision, r.content_hash, r.source, r.created_at) for r in rows]


def latest_revisions(engine: Engine) -> dict[str, int]:
    """Every postmortem id with its latest revision number."""
    with read_transaction(engine) as conn:
        rows = conn.execute(select(postmortems.c.id, postmortems.c.latest_revision)).all()
    return {row.id: row.latest_revision for row in rows}


def latest_postmortems(
    engine: Engine, ids: Sequence[str] | None = None, batch: int = 500
) -> Iterator[tuple[Postmortem, int]]:
    """The latest revision of every postmortem (or of the given ones), in id order."""
    wanted = sorted(set(ids)) if ids is not None else sorted(latest_revisions(engine))
    for start in range(0, len(wanted), batch):
        chunk = wanted[start : start + batch]
        with read_transaction(engine) as conn:
            rows = conn.execute(
                select(
                    postmortems.c.id,
                    postmortem_revisions.c.document,
                    postmortem_revisions.c.revision,
                )
                .join(postmortems, LATEST)
                .where(postmortems.c.id.in_(chunk))
                .order_by(postmortems.c.id)
            ).all()
        for row in rows:
            yield postmortem_from_stored(row.id, row.document)[0], row.revision


def fingerprint(engine: Engine) -> str:
    """Changes whenever any postmortem revision is added: the number of revisions stored
    (never changed or deleted, so it grows with every new one), kept in a counter row."""
    with read_transaction(engine) as conn:
        return str(conn.execute(counters.revisions_query()).scalar_one())
