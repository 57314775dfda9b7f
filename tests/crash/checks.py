"""What must hold after the crashes.

- `integrity`: rca has no integrity-check command (no `rca doctor`/`check`; nothing in
  rca/cli, api/cli or rca/store checks the store as a whole), so the checks are here: SQLite's
  own `PRAGMA integrity_check` and `foreign_key_check`, then the store's invariants on either
  back end, in SQL (see `INVARIANTS`).
- `duplicates`: no write of the run stored twice (one incident per title, one draft per
  incident, one review row per suggestion, one postmortem of one revision per incident).
- `acknowledged`: every acknowledged write read back through the API, exactly as confirmed.
- `jobs_settle`: no draft job left queued or running once leases expired (bounded wait).
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, text

from tests.crash.client import Ledger
from tests.crash.workload import Actors, Stories

INVARIANTS = {
    "an idempotency key left in flight, or done without its answer": """
        SELECT principal || '/' || key FROM idempotency_keys
        WHERE state != 'done' OR status_code IS NULL OR body IS NULL""",
    "a running draft job without a lease": """
        SELECT id FROM drafts WHERE status = 'running'
        AND (lease_owner IS NULL OR lease_expires_at IS NULL)""",
    "a draft job of an unknown status, or succeeded without its draft, or failed without why": """
        SELECT id FROM drafts WHERE status NOT IN ('queued', 'running', 'succeeded', 'failed')
        OR (status = 'succeeded' AND document IS NULL)
        OR (status = 'failed' AND error IS NULL)""",
    "a draft finalized into a postmortem that does not exist": """
        SELECT d.id FROM drafts d LEFT JOIN postmortems p ON p.id = d.finalized_postmortem_id
        WHERE d.finalized_postmortem_id IS NOT NULL AND p.id IS NULL""",
    "a draft of an unknown incident": """
        SELECT d.id FROM drafts d LEFT JOIN incidents i ON i.id = d.incident_id
        WHERE i.id IS NULL""",
    "a review newer than its draft, or of an unknown draft": """
        SELECT CAST(r.id AS TEXT) FROM reviews r LEFT JOIN drafts d ON d.id = r.draft_id
        WHERE d.id IS NULL OR r.draft_version > d.version""",
    "a postmortem whose latest revision is not its newest stored one": """
        SELECT p.id FROM postmortems p
        LEFT JOIN (SELECT postmortem_id, MAX(revision) AS top, COUNT(*) AS n
                   FROM postmortem_revisions GROUP BY postmortem_id) r
          ON r.postmortem_id = p.id
        WHERE r.top IS NULL OR r.top != p.latest_revision OR r.n != p.latest_revision""",
    "a postmortem revision without its postmortem": """
        SELECT r.postmortem_id FROM postmortem_revisions r
        LEFT JOIN postmortems p ON p.id = r.postmortem_id WHERE p.id IS NULL""",
    "an incident without a document or revision": """
        SELECT id FROM incidents WHERE document IS NULL OR document = '' OR revision < 1""",
}
"""Each query lists what violates the rule that names it (nothing, when it holds)."""

DUPLICATES = {
    "incidents with one title": """
        SELECT title FROM incidents WHERE title LIKE :prefix GROUP BY title HAVING COUNT(*) > 1""",
    "drafts of one incident": """
        SELECT d.incident_id FROM drafts d JOIN incidents i ON i.id = d.incident_id
        WHERE i.title LIKE :prefix GROUP BY d.incident_id HAVING COUNT(*) > 1""",
    "reviews of one suggestion": """
        SELECT r.draft_id || '/' || r.suggestion_id FROM reviews r
        JOIN drafts d ON d.id = r.draft_id JOIN incidents i ON i.id = d.incident_id
        WHERE i.title LIKE :prefix GROUP BY r.draft_id, r.suggestion_id HAVING COUNT(*) > 1""",
    "postmortems (or revisions) of one incident": """
        SELECT p.incident_id FROM postmortems p JOIN incidents i ON i.id = p.incident_id
        WHERE i.title LIKE :prefix GROUP BY p.incident_id
        HAVING COUNT(*) > 1 OR MAX(p.latest_revision) > 1""",
}


def integrity(engine: Engine, ledger: Ledger) -> list[str]:
    """The integrity problems found (each also a finding in `ledger`); empty when sound."""
    problems: list[str] = []
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            result = [r[0] for r in conn.execute(text("PRAGMA integrity_check"))]
            if result != ["ok"]:
                problems.append(f"PRAGMA integrity_check: {result[:5]}")
            broken = conn.execute(text("PRAGMA foreign_key_check")).all()
            if broken:
                problems.append(f"PRAGMA foreign_key_check: {[tuple(r) for r in broken[:5]]}")
        for rule, query in INVARIANTS.items():
            found = [str(r[0]) for r in conn.execute(text(query))]
            if found:
                problems.append(f"{rule}: {found[:5]} ({len(found)} in all)")
    for problem in problems:
        ledger.find("integrity", problem)
    ledger.count("integrity_checks")
    return problems


def duplicates(engine: Engine, prefix: str, ledger: Ledger) -> None:
    """Any write of the run (titles starting `prefix`) stored more than once is a finding."""
    with engine.connect() as conn:
        for what, query in DUPLICATES.items():
            found = [str(r[0]) for r in conn.execute(text(query), {"prefix": prefix + " %"})]
            for ident in found:
                ledger.find("duplicate", f"{what}: {ident}")


def acknowledged(stories: Stories, actors: Actors, ledger: Ledger) -> None:
    """Every confirmed write read back through the API, exactly as confirmed."""
    get = actors.engineer.call
    for story in stories.all:
        if story.incident_id is None:
            continue
        ledger.count("verified.incidents")
        found = get("GET", f"/v1/incidents/{story.incident_id}")
        if found.status != 200 or found.body["title"] != story.title:
            ledger.find("missing", f"incident {story.incident_id}: HTTP {found.status}")
        if story.job_id is None:
            continue
        ledger.count("verified.drafts")
        job = get("GET", f"/v1/drafts/{story.job_id}")
        if job.status != 200 or job.body["incident_id"] != story.incident_id:
            ledger.find("missing", f"draft {story.job_id}: HTTP {job.status}")
            continue
        if story.decisions:
            ledger.count("verified.reviews", by=len(story.decisions))
            shown = {s["id"]: s["status"] for s in job.body["draft"]["suggestions"]}
            for suggestion, status in story.decisions.items():
                if shown.get(suggestion) != status:
                    ledger.find("missing", f"review {story.job_id}/{suggestion}: {status}")
        want = 1 + len(story.decisions) + (story.postmortem is not None)
        if story.suggestions and job.body["version"] != want:
            ledger.find("missing", f"draft {story.job_id} at version {job.body['version']}")
        if story.postmortem is not None:
            ledger.count("verified.postmortems")
            ident, revision = story.postmortem
            pm = get("GET", f"/v1/postmortems/{ident}?revision={revision}")
            if pm.status != 200 or job.body["finalized_postmortem_id"] != ident:
                ledger.find("missing", f"postmortem {ident} revision {revision}: {pm.status}")


def jobs_settle(engine: Engine, ledger: Ledger, seconds: float) -> dict[str, int]:
    """Wait (at most `seconds`) for every draft job to succeed or fail; the jobs per status.
    One still queued or running then is stuck (a finding)."""
    deadline = time.monotonic() + seconds
    query = text("SELECT status, COUNT(*) FROM drafts GROUP BY status")
    while True:
        with engine.connect() as conn:
            counts = {str(s): int(n) for s, n in conn.execute(query)}
        open_jobs = counts.get("queued", 0) + counts.get("running", 0)
        if not open_jobs or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if open_jobs:
        with engine.connect() as conn:
            rows = conn.execute(text(STUCK)).all()
        shown = "; ".join(
            f"{r.id} {r.status} attempts {r.attempts} lease {r.lease_expires_at} updated"
            f" {r.updated_at}"
            for r in rows[:10]
        )
        ledger.find("stuck", f"{open_jobs} draft job(s) open after {seconds:.0f} s: {shown}")
    return counts


STUCK = """SELECT id, status, attempts, lease_expires_at, updated_at FROM drafts
    WHERE status IN ('queued', 'running') ORDER BY updated_at"""
