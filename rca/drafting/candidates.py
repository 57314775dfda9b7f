"""Candidate conditions and chain steps: the evidence lines a model chooses root causes and
chain steps among, ranked by cue words.

- candidate conditions: lines that say how the system works or what it lacked (absences and
  negations, limits, defaults, settings such as `max=4`); questions and guesses rank last;
- candidate chain steps: the first occurrence of each error, alerts (symptoms) and responders'
  findings before mitigation.

The ranking is a heuristic, measured by `rca eval run --rules`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rca.domain import Alert, ChatMessage, Incident, LogLine, TimelineEvent, TimelineKind
from rca.domain.similar import ERRORISH
from rca.drafting.blameless import FIRST_PERSON
from rca.drafting.validation import terms

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
_PLAN = re.compile(
    r"\b(?:let's|lets|we(?:'ll| will| should| could| need to| are going to)|i'll|going to|"
    r"propos\w*|decision|plan|next step\w*|for now|stop the bleeding|"
    r"roll(?:ed|ing)? (?:it |this |that |the \w+ )?back|revert\w*|fail(?:ing)? (?:it |them )?over|"
    r"restor\w*|cordon\w*|paus\w*|drain\w*|bringing|scal(?:e|ed|ing) (?:up|out|down)|"
    r"disabling|re-?push\w*|hotfix\w*|workaround|mitigat\w*|"
    r"don't (?:know|understand)|not sure|no idea)\b|^\s*fix(?:ed)?\b",
    re.IGNORECASE,
)
"""A mitigation step, a plan or a decision of the response, or not knowing: what responders
did or will do about the incident, not what caused it."""
_SETTING = re.compile(
    r"\b(?:max|min|limit|size|pool|mode|rate|timeout|ttl|threshold|capacity|replicas|auto|"
    r"check|interval|quota|retries|concurrency)\w*\s*[=:]\s*[\w.-]+",
    re.IGNORECASE,
)
"""A setting and its value (`max=4`, `rate=unbounded`): configuration that may be the flaw."""
_MIN_WORDS = 6
_RETRACTS = re.compile(
    r"\b(?:retract\w*|scratch that|i was wrong|we were wrong|ignore (?:what i said|my "
    r"(?:earlier|last|previous)\b)|not the \w+(?: \w+)? after all|ruled? (?:it |that )?out|"
    r"red herring|false (?:alarm|lead)|wrong (?:theory|lead|track))\b",
    re.IGNORECASE,
)
"""A line that takes back an earlier theory ("retracting the CDN theory", "a red herring")."""
_CLEARS = re.compile(
    r"([\w./-]+(?: [\w./-]+)?) (?:is|was|looks|are|were|seems?) (?:fine|healthy|ok|okay|"
    r"innocent|unrelated|not (?:it|the cause|involved|related))\b",
    re.IGNORECASE,
)
"""A line that clears what it names ("no, the CDN is fine"): it disputes an earlier line about
those words only."""
_GENERIC = frozenset({"theori", "caus", "issu", "problem", "thing", "root", "fine", "wrong"})
"""Stemmed words a retraction shares with any theory: not what it is about."""


@dataclass(frozen=True)
class Condition:
    """An evidence item that states how the system works or what it lacked: a candidate
    root cause (or chain step) a model is asked to choose among."""

    id: str
    at: datetime
    text: str
    score: float


def disputed(incident: Incident) -> dict[str, str]:
    """Chat lines and timeline observations taken back or disputed later: their id, and the
    id of the last line that disputes them. A disputing line is matched to the latest earlier
    line of the same author that shares a content word with it, else the latest of anyone's."""
    said: list[ChatMessage | TimelineEvent] = [*incident.chat]
    said += [e for e in incident.timeline if e.kind is TimelineKind.OBSERVATION]
    told = sorted(said, key=lambda i: (i.at, i.id))
    found: dict[str, str] = {}
    for index, line in enumerate(told):
        if _RETRACTS.search(line.text):
            about = terms(line.text) - _GENERIC
        elif cleared := _CLEARS.findall(line.text):
            about = terms(" ".join(cleared)) - _GENERIC
        else:
            continue
        earlier = [e for e in told[:index] if about & terms(e.text)]
        author = _author(line)
        own = [e for e in earlier if author is not None and _author(e) == author]
        if own or earlier:
            found[(own or earlier)[-1].id] = line.id
    return found


def _author(item: ChatMessage | TimelineEvent) -> str | None:
    return item.author if isinstance(item, ChatMessage) else item.actor


def candidate_conditions(
    incident: Incident, limit: int = 8, exclude: Iterable[str] = ()
) -> list[Condition]:
    """Up to `limit` findings from responders' chat, timeline observations, notes and logs,
    ranked by how much they say about mechanisms and missing safeguards (questions and guesses
    rank last, alerts and status updates are left out), then returned in time order."""
    skip = set(exclude)
    taken_back = disputed(incident)
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
        if _PLAN.search(text):
            score -= 3.0
        if item.id in taken_back or _RETRACTS.match(text):
            score -= 3.0  # a theory taken back later, or the taking back itself
        if FIRST_PERSON.search(text):
            score -= 2.0  # one responder's account: a reworded cause at best, never a quote
        score += min(words, 40) / 40
        scored.append(Condition(item.id, item.at, text, score))
    return _best_in_time_order(scored, limit)


def candidate_steps(
    incident: Incident, first_errors: Iterable[str], limit: int = 8, exclude: Iterable[str] = ()
) -> list[Condition]:
    """Up to `limit` evidence lines that may show how the failure spread, before mitigation:
    the first occurrence of each error, alerts (symptoms), responders' findings (chat and
    observations, guesses left out) and other log lines that say something about mechanisms,
    ranked by how much they say, returned in time order. `first_errors`: the ids of the first
    occurrence of each error signature (`findings.first_errors`)."""
    skip = set(exclude)
    end = incident.mitigated_at or incident.resolved_at
    errors = set(first_errors)
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
