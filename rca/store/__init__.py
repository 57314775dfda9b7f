"""The system of record: everything rca stores, and nothing else.

- `engine`: the schema (tables), the engine (SQLite or PostgreSQL), migrations (Alembic, in
  `migrations/`) and transactions; `sqlite_lock`: SQLite's writer lock;
- `records`: the `Store` facade (re-exported here) over `postmortem_records` (postmortems and
  their immutable revisions) and `postmortem_pages` (their listings and pages),
  `incident_records` (incidents), `action_items`, `action_updates` and `action_measures`
  (action items by stable key, their follow-up and overdue ones; rules in `action_rules`, rows
  kept in step by `action_sync`) and `outbox` (the index outbox, `IndexStateStore`); `writes`:
  what they share;
- `jobs`: durable draft jobs under leases; `keys` and `sessions`: API keys and web sessions;
  `idempotency`: replayed requests; `audit`: the audit log; `readback`: documents read back
  valid under today's rules, with a note for whatever an older version let in that they refuse.
- `digest_queries`: what a digest reads over a window; `digest_runs`: the record of the periodic
  digests queued (one per period).

May import: `rca.domain`, `rca.errors`, `rca.config`. Nothing here calls a model or an index.
"""

from rca.store import (
    action_tables,  # noqa: F401 - declares its tables on the metadata
    counters,  # noqa: F401 - declares its table on the metadata
    digest_runs,  # noqa: F401 - declares its table on the metadata
    insight_tables,  # noqa: F401 - declares its tables on the metadata
    integration_tables,  # noqa: F401 - declares its tables on the metadata
    recurrence_tables,  # noqa: F401 - declares its tables on the metadata
    webhook_tables,  # noqa: F401 - declares its tables on the metadata
)
from rca.store.action_items import ActionItemRow, ActionStatusRecord, with_statuses
from rca.store.incident_records import IncidentSummary
from rca.store.outbox import IndexStateStore, OutboxEntry, SearchSnapshot
from rca.store.postmortem_records import (
    PostmortemSummary,
    RevisionInfo,
    StoredPostmortem,
    save_postmortem_in,
)
from rca.store.records import Document, Store
from rca.store.writes import Outcome, SaveResult

__all__ = [
    "ActionItemRow",
    "ActionStatusRecord",
    "Document",
    "IncidentSummary",
    "IndexStateStore",
    "OutboxEntry",
    "Outcome",
    "PostmortemSummary",
    "RevisionInfo",
    "SaveResult",
    "SearchSnapshot",
    "Store",
    "StoredPostmortem",
    "save_postmortem_in",
    "with_statuses",
]
