"""The services rca has heard of: every one an incident or a postmortem names.

A change event for a service not among them is stored all the same, and flagged (a typo in a
deploy pipeline's service name would otherwise silently never match an incident).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from rca.store.integration_tables import services_seen
from rca.store.writes import now


def note_services(conn: Connection, names: Iterable[str]) -> None:
    """Remember `names` as seen, inside the caller's write transaction (known ones are kept)."""
    wanted = sorted({name for name in names if name})
    if not wanted:
        return
    rows = [{"name": name[:100], "first_seen": now()} for name in wanted]
    if conn.dialect.name == "postgresql":
        conn.execute(postgresql.insert(services_seen).values(rows).on_conflict_do_nothing())
    else:
        conn.execute(sqlite.insert(services_seen).values(rows).on_conflict_do_nothing())


def known(conn: Connection, name: str) -> bool:
    """Whether an incident or postmortem has named `name`."""
    found = conn.execute(select(services_seen.c.name).where(services_seen.c.name == name)).first()
    return found is not None
