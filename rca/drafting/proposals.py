"""Candidate contributing factors and action items: assembled by code once the root causes are
drafted, then chosen (and, by hosted models, worded) by the model.

Candidates come from three places (factors from the incident's own conditions are offered
first: measured, they match reviewers' factors more often than library wording):

- the remediation library (`rca.drafting.remedies`): failure modes whose cues appear in the
  drafted root causes, the trigger and the evidence, each with its factor and actions;
- gaps code measures: slow detection (a long time to detect, or detection by a user report
  rather than an alert), mitigation by a manual rollback, long manual recovery;
- conditions not chosen as root causes (as factors), and the action items of similar past
  postmortems whose root causes resemble this draft's (as actions, `rca.drafting.precedents`),
  their services replaced by this incident's.

Every text names this incident's service, never another incident's; each action says which
drafted cause (or factor) it addresses; an action a responder already took during the
incident is not proposed; nothing that names a person is proposed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from rca.domain import (
    ActionKind,
    ChatMessage,
    FactorCategory,
    Incident,
    Postmortem,
    Priority,
    TimelineEvent,
    TimelineKind,
)
from rca.drafting.assembly import Claim, people_of
from rca.drafting.blameless import FIRST_PERSON, as_stated, check_blameless
from rca.drafting.candidates import Condition, ranked
from rca.drafting.findings import Findings
from rca.drafting.precedents import precedents
from rca.drafting.remedies import Library, detect
from rca.drafting.validation import clean, terms

MAX_FACTORS = 6
MAX_ACTIONS = 8
SLOW_DETECTION_MIN = 15
"""Detection slower than this (minutes) is a gap worth an action."""
SLOW_MITIGATION_MIN = 60
ALREADY_DONE = 0.6
"""A candidate sharing this share of its words with an action responders took is not new."""
TELLING = 1.5
"""A condition not chosen as a root cause is a candidate factor only if it ranks this high
(it names a weakness or a setting, not only a finding)."""

_ROLLBACK = re.compile(
    r"\b(roll(ed|ing)?[ -]?back|revert(ed|ing)?|restor(ed|ing) the previous)\b", re.I
)
_REPORTED = re.compile(
    r"\b(customers?|users?|support|clients?)\b[^.]{0,30}\b(report\w*|noticed|tickets?|complain\w*)",
    re.I,
)
_UNCHOSEN = "a condition not chosen as a root cause"
_PLACEHOLDER = re.compile(r"\{(service|team)\}")
_CATEGORY_CUES: tuple[tuple[FactorCategory, re.Pattern[str]], ...] = (
    (
        FactorCategory.MONITORING,
        re.compile(r"\b(alert|monitor|dashboard|metric|page[ds]?|telemetry)", re.I),
    ),
    (
        FactorCategory.PEOPLE,
        re.compile(r"\b(on-?call|staff|handover|fatigue|training|owner)", re.I),
    ),
    (
        FactorCategory.PROCESS,
        re.compile(r"\b(runbook|review|process|test|rollout|procedure|release)", re.I),
    ),
    (
        FactorCategory.ENVIRONMENT,
        re.compile(r"\b(traffic|peak|provider|region|network|holiday)", re.I),
    ),
)


@dataclass(frozen=True)
class FactorCandidate:
    """A contributing factor the model may choose."""

    id: str
    text: str
    category: FactorCategory
    evidence_ids: list[str]
    source: str
    """Where it comes from, for the reviewer: a library failure mode, a measured gap, ..."""


@dataclass(frozen=True)
class ActionCandidate:
    """An action item the model may choose."""

    id: str
    text: str
    kind: ActionKind
    priority: Priority
    owner: str
    evidence_ids: list[str]
    source: str
    cause: int | None = None
    """Index of the drafted root cause it addresses."""
    factor: str | None = None
    """Id of the factor candidate it addresses (when it addresses no root cause directly)."""


@dataclass
class Proposals:
    """The candidates of one draft, best first."""

    factors: list[FactorCandidate] = field(default_factory=list)
    actions: list[ActionCandidate] = field(default_factory=list)

    def factor(self, ident: str) -> FactorCandidate | None:
        """The factor candidate with this id."""
        return next((f for f in self.factors if f.id == ident), None)

    def action(self, ident: str) -> ActionCandidate | None:
        """The action candidate with this id."""
        return next((a for a in self.actions if a.id == ident), None)


def names_person(text: str, people: Sequence[str]) -> bool:
    """Whether `text` names one of the incident's `people` (chat authors, timeline actors) or
    uses blaming language: a proposal is about systems, never about a person."""
    lowered = text.lower()
    for person in people:
        if person and re.search(rf"(?<![\w-]){re.escape(person.lower())}(?![\w-])", lowered):
            return True
    return bool(check_blameless(text, people))


def service_of(incident: Incident, texts: Sequence[str]) -> str | None:
    """The incident's service that `texts` (the trigger, the causes and what they cite) name
    first, else its first service; None if it lists none."""
    joined = " ".join(texts).lower()
    named = [s for s in incident.services if s.lower() in joined]
    if named:
        return min(named, key=lambda s: joined.index(s.lower()))
    return incident.services[0] if incident.services else None


def propose(
    incident: Incident,
    found: Findings,
    roots: Sequence[Claim],
    trigger: Claim | None,
    similar: Sequence[Postmortem],
    library: Library | None = None,
) -> Proposals:
    """The candidate factors and actions for a draft whose root causes are `roots`."""
    texts = {
        item.id: item.text
        for item in incident.evidence()
        if item.id not in found.flagged
        and not (isinstance(item, TimelineEvent) and item.kind is TimelineKind.COMMS)
    }
    cited = [texts.get(i, "") for r in roots for i in r.evidence_ids]
    changed = [trigger.text] if trigger else []
    service = service_of(incident, [*changed, *(r.text for r in roots), *cited])
    names = {
        "service": service or "the service",
        "team": f"{service} team" if service else "the owning team",
    }
    out = _Builder(incident, names)

    detected = detect(
        [(r.text, r.evidence_ids) for r in roots],
        (trigger.text, trigger.evidence_ids) if trigger else None,
        texts,
        library,
    )
    for found_mode in detected[:4]:
        mode = found_mode.mode
        source = f"remediation library: {mode.name}"
        factor = out.factor(mode.factor.text, mode.factor.category, found_mode.evidence_ids, source)
        for template in mode.actions:
            out.action(
                template.text,
                template.kind,
                template.priority,
                template.owner,
                found_mode.evidence_ids,
                source,
                cause=found_mode.cause,
                factor=factor,
            )
    _measured_gaps(incident, out)
    chosen = {i for r in roots for i in r.evidence_ids}
    for condition in [c for c in _unchosen(found.conditions, chosen) if c.score >= TELLING][:3]:
        text = as_stated(clean(condition.text).text)
        if FIRST_PERSON.search(text):
            continue  # one responder's account, never a quoted factor
        out.factor(text, _category(text), [condition.id], _UNCHOSEN)
    for past in precedents(roots, similar, service, library):
        kind, priority, cited = past.item.kind, past.item.priority, roots[past.cause].evidence_ids
        out.action(past.text, kind, priority, "{team}", cited, past.source, cause=past.cause)
    own = [f for f in out.factors if f.source == _UNCHOSEN]
    factors = own + [f for f in out.factors if f not in own]
    return Proposals(factors[:MAX_FACTORS], out.actions[:MAX_ACTIONS])


class _Builder:
    """Collects candidates: fills in names, drops repeats, blame and what was already done."""

    def __init__(self, incident: Incident, names: dict[str, str]) -> None:
        self.names = names
        self.people = people_of(incident)
        self.done = [terms(e.text) for e in incident.timeline if e.kind is TimelineKind.ACTION]
        self.factors: list[FactorCandidate] = []
        self.actions: list[ActionCandidate] = []
        self.seen: set[str] = set()

    def fill(self, template: str) -> str:
        """`{service}` and `{team}` replaced; any other text (braces included) kept as is."""
        return _PLACEHOLDER.sub(lambda m: self.names.get(m[1], m[0]), template)

    def acceptable(self, text: str) -> bool:
        key = text.lower()
        if key in self.seen or names_person(text, self.people):
            return False
        self.seen.add(key)
        return True

    def factor(
        self, template: str, category: FactorCategory, ids: Sequence[str], source: str
    ) -> str | None:
        text = self.fill(template)
        if not self.acceptable(text):
            return None
        ident = f"factor-{len(self.factors) + 1}"
        self.factors.append(FactorCandidate(ident, text, category, list(ids)[:4], source))
        return ident

    def action(
        self,
        template: str,
        kind: ActionKind,
        priority: Priority,
        owner: str,
        ids: Sequence[str],
        source: str,
        *,
        cause: int | None = None,
        factor: str | None = None,
    ) -> None:
        text = self.fill(template)
        words = terms(text)
        if words and any(len(words & done) / len(words) >= ALREADY_DONE for done in self.done):
            return  # responders already did this during the incident
        if not self.acceptable(text):
            return
        ident = f"action-{len(self.actions) + 1}"
        self.actions.append(
            ActionCandidate(
                ident, text, kind, priority, self.fill(owner), list(ids)[:4], source, cause, factor
            )
        )


def _measured_gaps(incident: Incident, out: _Builder) -> None:
    """Candidates from what the incident's own times and events show."""
    detect_minutes = _minutes(incident.time_to_detect)
    told: list[ChatMessage | TimelineEvent] = [*incident.chat, *incident.timeline]
    reported = [
        item.id
        for item in told
        if _REPORTED.search(item.text)
        and (incident.detected_at is None or item.at <= incident.detected_at)
    ]
    first_alert = min(incident.alerts, key=lambda a: (a.at, a.id), default=None)
    alerted_first = first_alert is not None and (
        incident.detected_at is None or first_alert.at <= incident.detected_at
    )
    if (detect_minutes is not None and detect_minutes >= SLOW_DETECTION_MIN) or (
        reported and not alerted_first
    ):
        how = "a user report" if reported and not alerted_first else "the first alert"
        took = f"{detect_minutes} min" if detect_minutes is not None else "long"
        ids = reported[:2] or ([first_alert.id] if first_alert else [])
        factor = out.factor(
            f"Detection took {took}: the failure was first noticed through {how}",
            FactorCategory.MONITORING,
            ids,
            "measured: time to detect",
        )
        out.action(
            "Alert on {service} errors and latency as users see them, so a failure like this "
            f"pages the owning team within 5 minutes (detection took {took})",
            ActionKind.DETECT,
            Priority.MUST if (detect_minutes or 0) >= 2 * SLOW_DETECTION_MIN else Priority.SHOULD,
            "{team}",
            ids,
            "measured: time to detect",
            factor=factor,
        )
    actions = [e for e in incident.timeline if e.kind is TimelineKind.ACTION]
    if incident.mitigated_at is not None:
        actions = [e for e in actions if e.at <= incident.mitigated_at]
    rollbacks = [e for e in actions if _ROLLBACK.search(e.text)]
    mitigate_minutes = _minutes(incident.time_to_mitigate)
    if rollbacks:
        out.action(
            "Halt {service} rollouts automatically and roll back when error rates rise after a "
            "change, instead of waiting for a manual rollback",
            ActionKind.MITIGATE,
            Priority.SHOULD,
            "{team}",
            [rollbacks[0].id],
            "measured: mitigated by a manual rollback",
            cause=0,
        )
    if mitigate_minutes is not None and mitigate_minutes >= SLOW_MITIGATION_MIN and actions:
        factor = out.factor(
            f"Recovery took {_duration(mitigate_minutes)} of manual steps before the impact ended",
            FactorCategory.PROCESS,
            [e.id for e in actions[:3]],
            "measured: time to mitigate",
        )
        out.action(
            "Automate the {service} recovery steps responders ran by hand and keep them in a "
            "rehearsed runbook",
            ActionKind.PROCESS,
            Priority.SHOULD,
            "{team}",
            [e.id for e in actions[:3]],
            "measured: time to mitigate",
            factor=factor,
        )


def _unchosen(conditions: Sequence[Condition], chosen: set[str]) -> list[Condition]:
    return [c for c in ranked(conditions) if c.id not in chosen]


def _category(text: str) -> FactorCategory:
    return next((c for c, cue in _CATEGORY_CUES if cue.search(text)), FactorCategory.TECHNOLOGY)


def _minutes(delta: timedelta | None) -> int | None:
    return None if delta is None else int(delta.total_seconds() // 60)


def _duration(minutes: int) -> str:
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
