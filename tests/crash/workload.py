"""The writes of a crash round: each `Story` is one incident's way from creation to a finalized
postmortem (create with an Idempotency-Key, request a draft with another, wait for it, decide
on a few suggestions, finalize), advanced a step at a time by client threads.

A story remembers what the server confirmed (a 2xx answer, or a read-back after a lost
request) and the one request it lost, if any (`pending`): that request is sent again, the same
way, before anything else, so a lost write is either found applied or applied now, never twice.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.crash.client import Answer, Client, Ledger, Lost

INCIDENT_FILE = Path(__file__).parents[2] / "examples/incidents/inc-2026-01-checkout-db-pool.json"
REVIEWED = 3
"""Suggestions decided per draft before it is finalized."""
STATUS = {"accept": "accepted", "reject": "rejected"}

Kind = Literal["create", "draft", "review", "finalize"]


@dataclass
class Pending:
    """A request whose answer was lost: what to send again."""

    kind: Kind
    suggestion: str = ""
    decision: str = ""
    if_match: int = 0


@dataclass
class Story:
    """One incident's writes and what the server confirmed of them."""

    n: int
    title: str
    create_key: str
    draft_key: str
    incident_id: str | None = None
    job_id: str | None = None
    version: int = 0
    """The draft's version as last confirmed (its ETag)."""
    suggestions: list[str] = field(default_factory=list)
    """The draft's suggestions, the summary's first."""
    accept: set[str] = field(default_factory=set)
    """Those always accepted (the summary: finalizing needs it)."""
    decisions: dict[str, str] = field(default_factory=dict)
    """Suggestion id -> the review status confirmed."""
    reviews: list[Pending] = field(default_factory=list)
    """The review requests confirmed (sent again as replays: never applied twice)."""
    finalized_on: int = 0
    """The If-Match of the confirmed finalization."""
    postmortem: tuple[str, int] | None = None
    pending: Pending | None = None
    ended: str | None = None
    """"finalized" or "job failed"."""
    not_before: float = 0.0

    def body(self) -> dict[str, Any]:
        incident = json.loads(INCIDENT_FILE.read_text())
        del incident["id"]
        return {**incident, "title": self.title}


def next_step(story: Story) -> Kind | Literal["wait"]:
    """What the story sends next."""
    if story.pending is not None:
        return story.pending.kind
    if story.incident_id is None:
        return "create"
    if story.job_id is None:
        return "draft"
    if not story.suggestions:
        return "wait"
    if len(story.decisions) < min(REVIEWED, len(story.suggestions)):
        return "review"
    return "finalize"


@dataclass
class Actors:
    """The clients: an engineer's key (incidents, drafts) and a reviewer's."""

    engineer: Client
    reviewer: Client


def advance(story: Story, actors: Actors, ledger: Ledger, rng: random.Random) -> None:
    """Send the story's next request and record what came of it. Lost when the connection
    failed (then `story.pending` holds the request to send again)."""
    step = next_step(story)
    if step == "wait":
        _wait(story, actors.engineer, ledger)
        return
    pending = story.pending or _request(story, step, rng)
    replay = story.pending is not None
    ledger.count("sent", f"sent.{step}")
    if replay:
        ledger.count("replays", "replays.lost", f"replays.lost.{step}")
    try:
        answer = _send(story, pending, actors)
    except Lost:
        story.pending = pending
        ledger.count("lost", f"lost.{step}")
        raise
    if answer.ok:
        ledger.count("acknowledged", f"acknowledged.{step}")
    story.pending = None
    try:
        _record(story, pending, answer, replay, actors, ledger)
    except Lost:  # reading back what a refused replay had done: send the replay again later
        story.pending = pending
        raise


def _request(story: Story, step: Kind, rng: random.Random) -> Pending:
    if step == "review":
        suggestion = next(s for s in story.suggestions if s not in story.decisions)
        decision = "accept" if suggestion in story.accept else rng.choice(list(STATUS))
        return Pending("review", suggestion, decision, story.version)
    return Pending(step, if_match=story.version)


def _send(story: Story, pending: Pending, actors: Actors) -> Answer:
    if pending.kind == "create":
        return actors.engineer.call(
            "POST", "/v1/incidents", story.body(), **{"Idempotency-Key": story.create_key}
        )
    if pending.kind == "draft":
        path = f"/v1/incidents/{story.incident_id}/drafts"
        return actors.engineer.call("POST", path, **{"Idempotency-Key": story.draft_key})
    match = {"If-Match": f'"{pending.if_match}"'}
    if pending.kind == "review":
        path = f"/v1/drafts/{story.job_id}/suggestions/{pending.suggestion}/review"
        return actors.reviewer.call("POST", path, {"decision": pending.decision}, **match)
    return actors.reviewer.call("POST", f"/v1/drafts/{story.job_id}/finalize", **match)


def _record(
    story: Story, pending: Pending, answer: Answer, replay: bool, actors: Actors, ledger: Ledger
) -> None:
    """What an answer means for the story; anything unexplained is a finding."""
    kind, status, body = pending.kind, answer.status, answer.body
    if kind == "create" and answer.ok:
        story.incident_id = body["id"]
    elif kind == "draft" and answer.ok:
        story.job_id = body["id"]
    elif kind == "review" and answer.ok:
        story.version = body["version"]
        story.decisions[pending.suggestion] = body["suggestion"]["status"]
        story.reviews.append(pending)
    elif kind == "finalize" and answer.ok:
        story.version = body["version"]
        story.finalized_on = pending.if_match
        story.postmortem = (body["postmortem_id"], body["revision"])
        story.ended = "finalized"
    elif replay and kind in ("review", "finalize") and status in (409, 412):
        _applied_before(story, pending, actors, ledger)  # the lost request had been applied
    elif status in (409, 429):  # busy, or answered at the same moment: send it again later
        ledger.count(f"refused.{status}")
        story.not_before = time.monotonic() + 1.0
    else:
        ledger.count("refused")
        ledger.find("error", f"{kind} of story {story.n}: HTTP {status} {str(body)[:300]}")
        story.ended = f"refused {status}"


def _applied_before(story: Story, pending: Pending, actors: Actors, ledger: Ledger) -> None:
    """A lost review or finalization, sent again, was refused for the draft's version: it must
    have been applied the first time -- exactly once."""
    found = actors.engineer.call("GET", f"/v1/drafts/{story.job_id}")
    draft = found.body
    ledger.count(f"lost_applied.{pending.kind}")
    if found.status != 200 or draft["version"] != pending.if_match + 1:
        ledger.find("duplicate", f"story {story.n}: lost {pending.kind} left {str(draft)[:300]}")
        return
    story.version = draft["version"]
    if pending.kind == "review":
        status = _suggestion(draft, pending.suggestion)["status"]
        if status != STATUS[pending.decision]:
            ledger.find("missing", f"story {story.n}: lost review applied as {status}")
        story.decisions[pending.suggestion] = status
        story.reviews.append(pending)
        return
    finalized = draft["finalized_postmortem_id"]
    got = actors.engineer.call("GET", f"/v1/postmortems/{finalized}")
    if got.status != 200:
        ledger.find("missing", f"story {story.n}: finalized into {finalized}, not found")
        return
    story.finalized_on = pending.if_match
    story.postmortem = (finalized, got.body["revision"])
    story.ended = "finalized"


def _suggestion(draft: dict[str, Any], ident: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in draft["draft"]["suggestions"] if s["id"] == ident)
    return found


def _wait(story: Story, engineer: Client, ledger: Ledger) -> None:
    """Look at the draft job: its suggestions once done; the story ends if it failed."""
    found = engineer.call("GET", f"/v1/drafts/{story.job_id}")
    if found.status != 200:
        ledger.find("missing", f"story {story.n}: draft {story.job_id}: HTTP {found.status}")
        story.ended = "lost draft"
        return
    job = found.body
    if job["status"] == "succeeded":
        story.version = job["version"]
        found = job["draft"]["suggestions"]  # the summary first: finalizing needs it accepted
        story.suggestions = [s["id"] for s in found if s["section"] == "summary"]
        story.accept = set(story.suggestions)
        story.suggestions += [s["id"] for s in found if s["section"] != "summary"]
    elif job["status"] == "failed":
        ledger.count("jobs.failed")
        story.ended = "job failed"
    else:
        story.not_before = time.monotonic() + 0.3


@dataclass
class Stories:
    """The stories of a run, handed to one thread at a time."""

    prefix: str
    rng: random.Random
    all: list[Story] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _taken: set[int] = field(default_factory=set)

    def take(self, max_open: int = 12) -> Story | None:
        """A story to advance: one with a lost request first, else a ready one, else a new one
        while fewer than `max_open` are unfinished; None when all wait (for their draft)."""
        with self.lock:
            now = time.monotonic()
            unfinished = [s for s in self.all if s.ended is None]
            ready = [s for s in unfinished if s.n not in self._taken and s.not_before <= now]
            lost = [s for s in ready if s.pending is not None]
            if lost:
                chosen = lost[0]
            elif ready:
                chosen = self.rng.choice(ready)
            elif len(unfinished) < max_open:
                chosen = self._new()
            else:
                return None
            self._taken.add(chosen.n)
            return chosen

    def _new(self) -> Story:
        n = len(self.all)
        story = Story(n, f"{self.prefix} {n}", f"{self.prefix}-c{n}", f"{self.prefix}-d{n}")
        self.all.append(story)
        return story

    def give_back(self, story: Story) -> None:
        with self.lock:
            self._taken.discard(story.n)


def burst(
    stories: Stories, actors: Actors, ledger: Ledger, stop: threading.Event, seed: int
) -> None:
    """One client thread: advance stories until `stop` is set or a request is lost."""
    rng = random.Random(seed)
    while not stop.is_set():
        story = stories.take()
        if story is None:
            stop.wait(0.1)
            continue
        try:
            advance(story, actors, ledger, rng)
        except Lost:
            return
        finally:
            stories.give_back(story)
