"""The audit trail: who did what to which object, when, written in the same transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from rca.store.engine import audit_log, read_transaction


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action."""

    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    detail: dict[str, Any]


def record(
    conn: Connection,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    **detail: Any,
) -> None:
    """Add an entry inside the caller's transaction (it commits or rolls back with it)."""
    entry = {
        "at": datetime.now(UTC),
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "detail": json.dumps(detail, sort_keys=True, default=str),
    }
    conn.execute(_ADD, entry)


_ADD = insert(audit_log)
"""Built once: building the statement with its values on every write costs more than running
it (every write records an entry)."""


def entries(engine: Engine, target_type: str, target_id: str) -> list[AuditEntry]:
    """The trail of one object, oldest first."""
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(audit_log)
            .where(audit_log.c.target_type == target_type, audit_log.c.target_id == target_id)
            .order_by(audit_log.c.id)
        ).all()
    return [
        AuditEntry(r.at, r.actor, r.action, r.target_type, r.target_id, json.loads(r.detail))
        for r in rows
    ]
