"""The deterministic part of an analysis: what code can establish before any model is asked.

- candidate triggers: deploys and config changes shortly before the impact began (the most
  recent first), the usual suspects a model is then asked to choose among;
- first error signatures: each distinct error once, where and when it first appeared;
- a merged timeline of every evidence item with the key moments marked (impact start,
  detection, first alert, first error, changes, mitigation, resolution);
- candidate conditions (evidence lines that say how the system works or what it lacked) and
  candidate chain steps (first errors, alerts, findings before mitigation), ranked by cue
  words: the root causes and chain steps a model chooses among.

Small models do badly when asked to find these in raw evidence; code does them exactly (the
ranking of conditions and steps is a heuristic, measured by `rca eval run --rules`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rca.context import evidence_lines, signature
from rca.models import Alert, ChatMessage, Incident, LogLine, TimelineEvent, TimelineKind
from rca.similar import ERRORISH

CHANGE_WINDOW = timedelta(hours=2)
"""How long before the impact a change still counts as a candidate trigger."""
GRACE = timedelta(minutes=5)
"""Changes this soon after the recorded start still count: start times are estimates."""
_CHANGE_WORDS = (
    "deploy",
    "rolled out",
    "rollout",
    "release",
    "config",
    "feature flag",
    "migration",
)


@dataclass(frozen=True)
class Candidate:
    """A change that might have triggered the incident."""

    id: str
    at: datetime
    text: str
    before_impact: timedelta
    """How long before the recorded start of impact (negative: just after it)."""


@dataclass(frozen=True)
class ErrorSignature:
    """One distinct error, with its first occurrence."""

    signature: str
    first_id: str
    first_at: datetime
    source: str | None
    count: int


@dataclass(frozen=True)
class Moment:
    """One entry of the merged timeline."""

    at: datetime
    id: str | None
    kind: str
    text: str
    key: str | None = None
    """Why the moment matters, when it does: impact start, detected, first alert, ..."""


def candidate_triggers(incident: Incident, window: timedelta = CHANGE_WINDOW) -> list[Candidate]:
    """Changes in `window` before the impact (and just after its recorded start), latest first."""
    onset = incident.started_at
    found: list[Candidate] = []
    for item in incident.evidence():
        is_change = (
            isinstance(item, TimelineEvent)
            and item.kind in (TimelineKind.DEPLOY, TimelineKind.CONFIG)
        ) or (
            isinstance(item, LogLine)
            and any(word in item.text.lower() for word in _CHANGE_WORDS)
            and not ERRORISH.search(item.text)
        )
        if is_change and onset - window <= item.at <= onset + GRACE:
            found.append(Candidate(item.id, item.at, item.text, onset - item.at))
    return sorted(found, key=lambda c: (abs(c.before_impact), c.id))


def first_errors(incident: Incident) -> list[ErrorSignature]:
    """Each distinct error signature in the logs, in order of first appearance."""
    seen: dict[str, list[LogLine]] = {}
    for line in sorted(incident.logs, key=lambda item: (item.at, item.id)):
        if ERRORISH.search(line.text):
            seen.setdefault(signature(line.text), []).append(line)
    return [
        ErrorSignature(sig, lines[0].id, lines[0].at, lines[0].source, len(lines))
        for sig, lines in seen.items()
    ]


def merged_timeline(incident: Incident) -> list[Moment]:
    """Every evidence item and the incident's own milestones, in time order, key moments marked."""
    candidates = {c.id for c in candidate_triggers(incident)}
    errors = {e.first_id for e in first_errors(incident)}
    first_alert = min(incident.alerts, key=lambda a: (a.at, a.id), default=None)
    moments = [
        Moment(incident.started_at, None, "milestone", "impact begins", "impact start"),
    ]
    for at, label in (
        (incident.detected_at, "detected"),
        (incident.mitigated_at, "mitigated"),
        (incident.resolved_at, "resolved"),
    ):
        if at is not None:
            moments.append(Moment(at, None, "milestone", label, label))
    for line in evidence_lines(incident):
        key = None
        if first_alert is not None and line.id == first_alert.id:
            key = "first alert"
        elif line.id in candidates:
            key = "change before impact"
        elif line.id in errors:
            key = "first occurrence of an error"
        moments.append(Moment(line.at, line.id, line.kind, line.text, key))
    return sorted(moments, key=lambda m: (m.at, m.id is not None, m.id or ""))


# --- candidate conditions and chain steps ---------------------------------------------------

_WEAKNESS = re.compile(
    r"\b(?:no|not|never|without|missing|nothing|none|isn't|wasn't|weren't|doesn't|didn't|"
    r"don't|can't|cannot|couldn't|unbounded|unlimited|skip\w*|lack\w*|absent|disabled|only|"
    r"single|every|whole|same|default|deprecated|legacy|manual\w*|untested|hard-?coded|shared|"
    r"assum\w*|because|since|so|instead|rather|means|limit\w*|check(?:s|ed|ing)?|safeguard\w*|"
    r"validat\w*|confirm\w*|review\w*|guard\w*|rate|retr(?:y|ies)|backoff|quota|capacity|"
    r"staged|expir\w*|stale|wrong|mismatch\w*|depend\w*|selector|label|restart\w*|backups?)\b",
    re.IGNORECASE,
)
"""Words that say how the system works or what it lacked: the stuff of root causes."""
_HEDGE = re.compile(r"\?(?:\s|\.|$)|^\s*(?:could|is (?:this|it)|did|maybe|might)\b", re.I)
"""A question or a guess, not a finding."""
_SETTING = re.compile(
    r"\b(?:max|min|limit|size|pool|mode|rate|timeout|ttl|threshold|capacity|replicas|auto|"
    r"check|interval|quota|retries|concurrency)\w*\s*[=:]\s*[\w.-]+",
    re.IGNORECASE,
)
"""A setting and its value (`max=4`, `rate=unbounded`): configuration that may be the flaw."""
_MIN_WORDS = 6


@dataclass(frozen=True)
class Condition:
    """An evidence item that states how the system works or what it lacked: a candidate
    root cause (or chain step) a model is asked to choose among."""

    id: str
    at: datetime
    text: str
    score: float


def candidate_conditions(
    incident: Incident, limit: int = 8, exclude: Iterable[str] = ()
) -> list[Condition]:
    """Up to `limit` findings from responders' chat, timeline observations, notes and logs,
    ranked by how much they say about mechanisms and missing safeguards (questions and guesses
    rank last, alerts and status updates are left out), then returned in time order."""
    skip = set(exclude)
    scored: list[Condition] = []
    for item in incident.evidence():
        if item.id in skip or isinstance(item, Alert):
            continue
        if isinstance(item, TimelineEvent) and item.kind in (
            TimelineKind.COMMS,
            TimelineKind.ALERT,
        ):
            continue
        text = " ".join(item.text.split())
        words = len(text.split())
        if words < _MIN_WORDS:
            continue
        words_only = text.replace("_", " ")
        score = float(len(_WEAKNESS.findall(words_only))) + min(2, len(_SETTING.findall(text)))
        if isinstance(item, ChatMessage):
            score += 1.0
        elif isinstance(item, LogLine) and ERRORISH.search(text):
            score -= 0.5
        if _HEDGE.search(text):
            score -= 3.0
        score += min(words, 40) / 40
        scored.append(Condition(item.id, item.at, text, score))
    return _best_in_time_order(scored, limit)


def candidate_steps(
    incident: Incident, limit: int = 8, exclude: Iterable[str] = ()
) -> list[Condition]:
    """Up to `limit` evidence lines that may show how the failure spread, before mitigation:
    the first occurrence of each error, alerts (symptoms), responders' findings (chat and
    observations, guesses left out) and other log lines that say something about mechanisms,
    ranked by how much they say, returned in time order."""
    skip = set(exclude)
    end = incident.mitigated_at or incident.resolved_at
    errors = {e.first_id for e in first_errors(incident)}
    scored: list[Condition] = []
    for item in incident.evidence():
        if item.id in skip or (end is not None and item.at >= end):
            continue
        text = " ".join(item.text.split())
        cues = len(_WEAKNESS.findall(text.replace("_", " ")))
        if isinstance(item, Alert):
            score = 1.5
        elif isinstance(item, LogLine):
            if item.id in errors:
                score = 2.0 + 0.5 * cues
            elif ERRORISH.search(text):
                continue  # a repeat of an error already listed
            else:
                score = 0.5 * cues
        elif isinstance(item, ChatMessage) or (
            isinstance(item, TimelineEvent) and item.kind is TimelineKind.OBSERVATION
        ):
            if _HEDGE.search(text) or len(text.split()) < _MIN_WORDS:
                continue
            score = 0.5 + 0.5 * cues
        else:
            continue
        if score > 0:
            scored.append(Condition(item.id, item.at, text, score))
    return _best_in_time_order(scored, limit)


def ranked(found: Iterable[Condition]) -> list[Condition]:
    """Candidates best first (ties: earliest first): the order a model is offered them in."""
    return sorted(found, key=lambda c: (-c.score, c.at, c.id))


def _best_in_time_order(scored: list[Condition], limit: int) -> list[Condition]:
    """The `limit` best-ranked, returned oldest first."""
    return sorted(ranked(scored)[:limit], key=lambda c: (c.at, c.id))
