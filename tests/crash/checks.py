"""What must hold after the crashes.

- `integrity`: `rca check`'s checks (`rca.store.integrity`): SQLite's own
  `integrity_check` and `foreign_key_check`, then the store's rules on either back end.
- `duplicates`: no write of the run stored twice (one incident per title, one draft per
  incident, one review row per suggestion, one postmortem of one revision per incident).
- `acknowledged`: every acknowledged write read back through the API, exactly as confirmed.
- `jobs_settle`: no draft job left queued or running once leases expired (bounded wait).
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, text

from rca.store.integrity import check
from tests.crash.client import Ledger
from tests.crash.workload import Actors, Stories

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
    """The integrity problems `rca check` finds (each also a finding in `ledger`); empty when
    sound."""
    problems = [str(p) for p in check(engine)]
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
