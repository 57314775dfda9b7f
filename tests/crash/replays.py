"""After each restart: the lost requests sent again (each settles: found applied, or applied
now), then a sample of acknowledged writes sent again, which must change nothing.

- an incident creation or draft request with its Idempotency-Key: the stored answer
  (`Idempotent-Replayed: true`), the same id;
- a review decision or finalization with its old If-Match: refused (412, or 409 once
  finalized), the draft's version unchanged, no second postmortem revision.
"""

from __future__ import annotations

import random

from tests.crash.client import Answer, Ledger, Lost
from tests.crash.workload import Actors, Stories, Story, advance


def settle_lost(stories: Stories, actors: Actors, ledger: Ledger, rng: random.Random) -> None:
    """Send every lost request again, one at a time (Lost if the server went away)."""
    for story in list(stories.all):
        if story.pending is not None and story.ended is None:
            advance(story, actors, ledger, rng)


def replay_acknowledged(
    stories: Stories, actors: Actors, ledger: Ledger, rng: random.Random, sample: int
) -> None:
    """Send up to `sample` acknowledged writes again; each must leave everything as it was."""
    done = [s for s in stories.all if s.incident_id is not None]
    for story in rng.sample(done, min(sample, len(done))):
        choices = ["create"]
        if story.job_id is not None:
            choices.append("draft")
        if story.reviews and story.postmortem is None:
            choices.append("review")
        if story.postmortem is not None:
            choices.append("finalize")
        kind = rng.choice(choices)
        ledger.count("replays", "replays.acknowledged", f"replays.acknowledged.{kind}")
        _replay(story, kind, actors, ledger)


def _replay(story: Story, kind: str, actors: Actors, ledger: Ledger) -> None:
    engineer, reviewer = actors.engineer, actors.reviewer
    if kind in ("create", "draft"):
        if kind == "create":
            key, want = story.create_key, story.incident_id
            answer = engineer.call(
                "POST", "/v1/incidents", story.body(), **{"Idempotency-Key": key}
            )
        else:
            key, want = story.draft_key, story.job_id
            path = f"/v1/incidents/{story.incident_id}/drafts"
            answer = engineer.call("POST", path, **{"Idempotency-Key": key})
        replayed = answer.headers.get("idempotent-replayed") == "true"
        if not (answer.ok and replayed and answer.body.get("id") == want):
            _duplicate(ledger, story, kind, answer, f"wanted {want} replayed")
        return
    before = engineer.call("GET", f"/v1/drafts/{story.job_id}").body
    if kind == "review":
        last = story.reviews[-1]
        path = f"/v1/drafts/{story.job_id}/suggestions/{last.suggestion}/review"
        match = {"If-Match": f'"{last.if_match}"'}
        answer = reviewer.call("POST", path, {"decision": last.decision}, **match)
    else:
        match = {"If-Match": f'"{story.finalized_on}"'}
        answer = reviewer.call("POST", f"/v1/drafts/{story.job_id}/finalize", **match)
    after = engineer.call("GET", f"/v1/drafts/{story.job_id}").body
    if answer.status not in (409, 412) or after["version"] != before["version"]:
        _duplicate(
            ledger, story, kind, answer, f"version {before['version']} -> {after['version']}"
        )
    if kind == "finalize" and story.postmortem is not None:
        ident, revision = story.postmortem
        found = engineer.call("GET", f"/v1/postmortems/{ident}")
        if found.status != 200 or found.body["latest_revision"] != revision:
            _duplicate(ledger, story, kind, found, f"postmortem {ident} revision {revision}")


def _duplicate(ledger: Ledger, story: Story, kind: str, answer: Answer, what: str) -> None:
    ledger.find(
        "duplicate",
        f"story {story.n}: {kind} replay: HTTP {answer.status}, {what}: {str(answer.body)[:300]}",
    )


__all__ = ["Lost", "replay_acknowledged", "settle_lost"]
