"""The store's integrity check (`rca check`): the database engine's own checks where it has
them (SQLite's `integrity_check` and `foreign_key_check`) and rca's rules that keys and
constraints cannot state, in SQL on either back end. Each rule's query lists what breaks it;
a sound store lists nothing. Read-only: it reports, an operator decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

from rca.store.engine import read_transaction

RULES = {
    "every idempotent request is finished and keeps its answer": """
        SELECT principal || '/' || key FROM idempotency_keys
        WHERE state != 'done' OR status_code IS NULL OR body IS NULL""",
    "a running draft job holds a lease": """
        SELECT id FROM drafts WHERE status = 'running'
        AND (lease_owner IS NULL OR lease_expires_at IS NULL)""",
    "a draft job's status is known; a succeeded one has its draft, a failed one its reason": """
        SELECT id FROM drafts WHERE status NOT IN ('queued', 'running', 'succeeded', 'failed')
        OR (status = 'succeeded' AND document IS NULL)
        OR (status = 'failed' AND error IS NULL)""",
    "a finalized draft's postmortem exists": """
        SELECT d.id FROM drafts d LEFT JOIN postmortems p ON p.id = d.finalized_postmortem_id
        WHERE d.finalized_postmortem_id IS NOT NULL AND p.id IS NULL""",
    "a draft's incident exists": """
        SELECT d.id FROM drafts d LEFT JOIN incidents i ON i.id = d.incident_id
        WHERE i.id IS NULL""",
    "a review decision is of an existing draft, at a version it had": """
        SELECT CAST(r.id AS TEXT) FROM reviews r LEFT JOIN drafts d ON d.id = r.draft_id
        WHERE d.id IS NULL OR r.draft_version > d.version""",
    "a postmortem's revisions are 1 to its latest, all stored": """
        SELECT p.id FROM postmortems p
        LEFT JOIN (SELECT postmortem_id, MAX(revision) AS top, COUNT(*) AS n
                   FROM postmortem_revisions GROUP BY postmortem_id) r
          ON r.postmortem_id = p.id
        WHERE r.top IS NULL OR r.top != p.latest_revision OR r.n != p.latest_revision""",
    "a postmortem revision belongs to a stored postmortem": """
        SELECT r.postmortem_id FROM postmortem_revisions r
        LEFT JOIN postmortems p ON p.id = r.postmortem_id WHERE p.id IS NULL""",
    "the count of postmortem revisions kept (the store's fingerprint) is the number stored": """
        SELECT c.name || ' = ' || CAST(c.value AS TEXT) FROM store_counters c
        WHERE c.name = 'postmortem_revisions'
        AND c.value != (SELECT COUNT(*) FROM postmortem_revisions)""",
    "the counts of waiting drafts kept (on SQLite) are the drafts waiting": """
        SELECT c.name || ' = ' || CAST(c.value AS TEXT) FROM store_counters c
        WHERE c.name LIKE 'queued_drafts%' AND c.value != (
            SELECT COUNT(*) FROM drafts d WHERE d.status = 'queued'
            AND (c.name = 'queued_drafts'
                 OR c.name = 'queued_drafts:' || COALESCE(d.requested_key, '')))""",
    "an incident has its document and a revision": """
        SELECT id FROM incidents WHERE document IS NULL OR document = '' OR revision < 1""",
}
"""Each rule, and the query listing what breaks it."""

SHOWN = 5
"""Offending keys shown per broken rule (the count says how many in all)."""


@dataclass(frozen=True)
class Problem:
    """A broken rule: which, some of the offending keys, and how many there are."""

    rule: str
    examples: tuple[str, ...]
    count: int

    def __str__(self) -> str:
        more = f" and {self.count - len(self.examples)} more" if self.count > SHOWN else ""
        return f"{self.rule}: broken by {', '.join(self.examples)}{more}"


def check(engine: Engine) -> list[Problem]:
    """Every problem found; an empty list when the store is sound."""
    problems: list[Problem] = []
    with read_transaction(engine) as conn:
        if conn.dialect.name == "sqlite":
            result = [str(r[0]) for r in conn.execute(text("PRAGMA integrity_check"))]
            if result != ["ok"]:
                problems.append(
                    Problem("SQLite's integrity check passes", tuple(result[:SHOWN]), len(result))
                )
            broken = [str(tuple(r)) for r in conn.execute(text("PRAGMA foreign_key_check"))]
            if broken:
                problems.append(
                    Problem("every foreign key points at a row", tuple(broken[:SHOWN]), len(broken))
                )
        for rule, query in RULES.items():
            found = [str(r[0]) for r in conn.execute(text(query))]
            if found:
                problems.append(Problem(rule, tuple(found[:SHOWN]), len(found)))
    return problems
