"""Pages of postmortems: the listing, newest incident date first, and the filtered pages the
API and the web UI show, their statements built once for each combination of filters (one
built per call costs more than running it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date as CalendarDate
from functools import cache
from typing import Any

from sqlalchemy import BindParameter, Engine, Select, bindparam, or_, select

from rca.domain import Severity
from rca.store.engine import postmortem_revisions, postmortems, read_transaction
from rca.store.postmortem_records import LATEST, PostmortemSummary


def list_postmortems(engine: Engine) -> list[PostmortemSummary]:
    """Every postmortem, newest incident date first."""
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(*_SUMMARY).order_by(postmortems.c.date.desc().nulls_last(), postmortems.c.id)
        ).all()
    return [_summary(row) for row in rows]


def postmortem_page(
    engine: Engine,
    limit: int,
    after: tuple[CalendarDate | None, str] | None = None,
    severities: Sequence[Severity] = (),
    services: Sequence[str] = (),
    since: CalendarDate | None = None,
    until: CalendarDate | None = None,
    title: str | None = None,
    batch: int = 200,
) -> list[PostmortemSummary]:
    """Up to `limit` postmortems, newest incident date first (undated ones last), after the
    (date, id) of the last one seen; filtered by severity, service (any of them), date
    range and a case-insensitive title substring.

    Services live only in the documents, so with a service filter the latest revisions are
    read `batch` rows at a time and filtered here until the page is full.
    """
    filters = (bool(severities), since is not None, until is not None, bool(title), bool(services))
    escaped = (title or "").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    values: dict[str, Any] = {
        "severities": [s.value for s in severities],
        "since": since,
        "until": until,
        "title": f"%{escaped}%",
    }
    wanted = set(services)
    found: list[PostmortemSummary] = []
    while len(found) < limit:
        size = batch if wanted else limit - len(found)
        cursor = "first" if after is None else "dated" if after[0] is not None else "undated"
        if after is not None:
            values["after_day"], values["after_id"] = after
        with read_transaction(engine) as conn:
            rows = conn.execute(_page_query(*filters, cursor), {**values, "page_size": size}).all()
        for row in rows:
            after = (row[2], row[0])
            if wanted and not wanted & set(json.loads(row[6]).get("services", [])):
                continue
            found.append(_summary(row))
            if len(found) == limit:
                break
        if len(rows) < size:
            if cursor == "undated" or since is not None or until is not None:
                break
            after = (None, "")  # the dated ones are done: the undated ones follow, by id
    return found


_SUMMARY = (
    postmortems.c.id,
    postmortems.c.title,
    postmortems.c.date,
    postmortems.c.severity,
    postmortems.c.latest_revision,
    postmortems.c.updated_at,
)
"""The columns of a listing row, in `_summary`'s order."""


def _summary(row: Sequence[Any]) -> PostmortemSummary:
    ident, title, day, severity, latest, updated_at = row[:6]
    return PostmortemSummary(
        id=ident,
        title=title,
        date=day.isoformat() if day else None,
        severity=Severity(severity) if severity else None,
        latest_revision=latest,
        updated_at=updated_at,
    )


@cache
def _page_query(
    severities: bool, since: bool, until: bool, title: bool, services: bool, cursor: str
) -> Select[Any]:
    """`postmortem_page`'s statement for the filters given and where the page starts
    (`first`: the newest dated postmortem; `dated`: after `after_day` and `after_id`;
    `undated`: the undated ones after `after_id`), their values bound parameters: built once
    for each combination (one built per call costs more than running it). The dated ones are
    read in the order of ix_postmortems_date_desc_id; the undated ones follow, by id."""
    query = select(*_SUMMARY)
    if services:
        query = query.add_columns(postmortem_revisions.c.document).join(
            postmortem_revisions, LATEST
        )
    if severities:
        query = query.where(postmortems.c.severity.in_(bindparam("severities", expanding=True)))
    if since:
        query = query.where(postmortems.c.date >= bindparam("since"))
    if until:
        query = query.where(postmortems.c.date <= bindparam("until"))
    if title:
        query = query.where(postmortems.c.title.ilike(bindparam("title"), escape="\\"))
    ident: BindParameter[str] = bindparam("after_id")
    if cursor == "undated":
        query = query.where(postmortems.c.date.is_(None), postmortems.c.id > ident)
        return query.order_by(postmortems.c.id).limit(bindparam("page_size"))
    query = query.where(postmortems.c.date.is_not(None))
    if cursor == "dated":
        day: BindParameter[CalendarDate] = bindparam("after_day")
        # `date <= day` bounds the index scan; the rest skips the day's ids already seen.
        query = query.where(
            postmortems.c.date <= day, or_(postmortems.c.date < day, postmortems.c.id > ident)
        )
    query = query.order_by(postmortems.c.date.desc(), postmortems.c.id)
    return query.limit(bindparam("page_size"))
