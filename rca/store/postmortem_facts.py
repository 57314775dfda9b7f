"""Postmortem facts for the insights: which postmortems' facts are stale, replacing them, and
counting them over a date range."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, and_, delete, func, insert, or_, select

from rca.domain import Severity
from rca.store.engine import postmortem_revisions, postmortems, read_transaction
from rca.store.insight_tables import postmortem_fact_state, postmortem_facts
from rca.store.writes import writing


@dataclass(frozen=True)
class StalePostmortem:
    """A postmortem whose facts are missing or older than its latest revision."""

    id: str
    revision: int
    document: str


def stale_postmortems(engine: Engine, limit: int) -> list[StalePostmortem]:
    """Up to `limit` postmortems whose facts need finding, in id order."""
    state = postmortem_fact_state.c
    query = (
        select(postmortems.c.id, postmortems.c.latest_revision, postmortem_revisions.c.document)
        .join(
            postmortem_revisions,
            and_(
                postmortem_revisions.c.postmortem_id == postmortems.c.id,
                postmortem_revisions.c.revision == postmortems.c.latest_revision,
            ),
        )
        .outerjoin(postmortem_fact_state, state.postmortem_id == postmortems.c.id)
        .where(or_(state.revision.is_(None), state.revision != postmortems.c.latest_revision))
        .order_by(postmortems.c.id)
        .limit(limit)
    )
    with read_transaction(engine) as conn:
        rows = conn.execute(query).all()
    return [StalePostmortem(r[0], r[1], r[2]) for r in rows]


def stale_count(engine: Engine) -> int:
    """How many postmortems' facts need finding."""
    state = postmortem_fact_state.c
    query = (
        select(func.count())
        .select_from(postmortems)
        .outerjoin(postmortem_fact_state, state.postmortem_id == postmortems.c.id)
        .where(or_(state.revision.is_(None), state.revision != postmortems.c.latest_revision))
    )
    with read_transaction(engine) as conn:
        return int(conn.execute(query).scalar_one())


def replace_facts(
    engine: Engine, found: Iterable[tuple[str, int, Iterable[tuple[str, str]]]]
) -> None:
    """Store the facts of several postmortems, each (id, revision, (kind, value) pairs)."""
    with writing(engine) as conn:
        for ident, revision, facts in found:
            conn.execute(delete(postmortem_facts).where(postmortem_facts.c.postmortem_id == ident))
            conn.execute(
                delete(postmortem_fact_state).where(postmortem_fact_state.c.postmortem_id == ident)
            )
            rows = [
                {"postmortem_id": ident, "kind": kind, "value": value[:100]}
                for kind, value in dict.fromkeys((k, v[:100]) for k, v in facts)
            ]
            if rows:
                conn.execute(insert(postmortem_facts), rows)
            conn.execute(
                insert(postmortem_fact_state).values(postmortem_id=ident, revision=revision)
            )


def fact_counts(
    engine: Engine,
    kinds: Sequence[str],
    since: date,
    until: date,
    services: Sequence[str] = (),
    severities: Sequence[Severity] = (),
) -> tuple[dict[str, dict[str, int]], int, int]:
    """For each of `kinds`, how many postmortems dated from `since` up to (not including)
    `until` have each value; with how many postmortems that is, and how many are undated."""
    pm = postmortems.c
    facts = postmortem_facts.c
    dated = and_(pm.date >= since, pm.date < until)
    chosen = select(pm.id).where(dated)
    if severities:
        chosen = chosen.where(pm.severity.in_([s.value for s in severities]))
    if services:
        chosen = chosen.where(
            pm.id.in_(
                select(facts.postmortem_id).where(
                    facts.kind == "service", facts.value.in_(list(services))
                )
            )
        )
    ids = chosen.subquery()
    counted = (
        select(facts.kind, facts.value, func.count())
        .where(facts.kind.in_(list(kinds)), facts.postmortem_id.in_(select(ids.c.id)))
        .group_by(facts.kind, facts.value)
    )
    with read_transaction(engine) as conn:
        out: dict[str, dict[str, int]] = {kind: {} for kind in kinds}
        for kind, value, count in conn.execute(counted).all():
            out[kind][value] = int(count)
        total = int(conn.execute(select(func.count()).select_from(ids)).scalar_one())
        undated = int(
            conn.execute(
                select(func.count()).select_from(postmortems).where(pm.date.is_(None))
            ).scalar_one()
        )
    return out, total, undated


def facts_for(engine: Engine, ids: Sequence[str], kind: str) -> dict[str, set[str]]:
    """The values of one kind of fact of each of the given postmortems."""
    if not ids:
        return {}
    query = select(postmortem_facts.c.postmortem_id, postmortem_facts.c.value).where(
        postmortem_facts.c.kind == kind, postmortem_facts.c.postmortem_id.in_(list(ids))
    )
    found: dict[str, set[str]] = {}
    with read_transaction(engine) as conn:
        for ident, value in conn.execute(query).all():
            found.setdefault(ident, set()).add(value)
    return found
