"""The deterministic part of an analysis: what code can establish before any model is asked.

- candidate triggers: deploys and config changes shortly before the impact began (the most
  recent first), the usual suspects a model is then asked to choose among;
- first error signatures: each distinct error once, where and when it first appeared;
- a merged timeline of every evidence item with the key moments marked (impact start,
  detection, first alert, first error, changes, mitigation, resolution);
- the facts a summary and an impact can state without a model (title, services, durations;
  what the alerts said);
- evidence that steers (possible prompt injection, overt or covert: it addresses the model or
  the report's writer, or asks to hand over credentials or disable a safeguard), flagged;
- candidate conditions and chain steps (`rca.drafting.candidates`).

`find` computes all of it once per draft, as one `Findings` value the later stages read: the
prompt context, the checks, the fallbacks and the retrieval-only baseline. Small models do
badly when asked to find these in raw evidence; code does them exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rca.domain import DraftNote, Incident, LogLine, NoteKind, TimelineEvent, TimelineKind
from rca.domain.similar import ERRORISH
from rca.drafting.candidates import Condition, candidate_conditions, candidate_steps, disputed
from rca.drafting.evidence import evidence_lines, signature
from rca.drafting.validation import suspicious_ids

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


_COMMAND = re.compile(
    r"(?:^|\s)[$#] \S|\b(?:sudo|kubectl (?:delete|drain|apply|scale|rollout|cordon)|"
    r"terraform (?:apply|destroy)|ansible-playbook|systemctl (?:restart|stop)|rm -rf|"
    r"drop (?:table|database)|truncate table)\b",
    re.IGNORECASE,
)
"""A command line in a log: a shell prompt or a command known to change systems."""


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
    """Changes in `window` before the impact (and just after its recorded start), latest first:
    deploys and config changes, operator actions and commands run before the impact began."""
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
        is_operation = item.at <= onset and (
            (isinstance(item, TimelineEvent) and item.kind is TimelineKind.ACTION)
            or (
                isinstance(item, LogLine)
                and _COMMAND.search(item.text) is not None
                and not ERRORISH.search(item.text)
            )
        )
        if (is_change or is_operation) and onset - window <= item.at <= onset + GRACE:
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


def merged_timeline(
    incident: Incident, triggers: Sequence[Candidate], errors: Sequence[ErrorSignature]
) -> list[Moment]:
    """Every evidence item and the incident's own milestones, in time order, key moments marked
    (the candidate `triggers` and the first occurrence of each of the `errors`)."""
    candidates = {c.id for c in triggers}
    first = {e.first_id for e in errors}
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
        elif line.id in first:
            key = "first occurrence of an error"
        moments.append(Moment(line.at, line.id, line.kind, line.text, key))
    return sorted(moments, key=lambda m: (m.at, m.id is not None, m.id or ""))


def _duration(delta: timedelta | None) -> str | None:
    if delta is None:
        return None
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def facts_summary(incident: Incident) -> tuple[str, list[str]]:
    """A summary from the incident's own fields (title, summary, services, durations), and the
    evidence it cites (the first alert)."""
    first_alert = min(incident.alerts, key=lambda a: (a.at, a.id), default=None)
    facts = [
        f"{incident.title}.",
        incident.summary,
        f"Services involved: {', '.join(incident.services)}." if incident.services else "",
    ]
    for label, delta in (
        ("Time to detect", incident.time_to_detect),
        ("time to mitigate", incident.time_to_mitigate),
        ("time to resolve", incident.time_to_resolve),
    ):
        if (text := _duration(delta)) is not None:
            facts.append(f"{label}: {text}.")
    return " ".join(f for f in facts if f), [first_alert.id] if first_alert else []


def impact_from_alerts(incident: Incident) -> tuple[str, list[str]] | None:
    """The impact as the alerts state it, with their ids; None without alerts."""
    if not incident.alerts:
        return None
    alerts = sorted(incident.alerts, key=lambda a: (a.at, a.id))
    return "; ".join(a.text for a in alerts), [a.id for a in alerts]


@dataclass(frozen=True)
class Findings:
    """Everything code establishes about one incident before a model is asked, computed once."""

    triggers: list[Candidate]
    """Candidate triggers, nearest to the impact first."""
    errors: list[ErrorSignature]
    """Each distinct error once, in order of first appearance."""
    timeline: list[Moment]
    """Every evidence item and milestone in time order, key moments marked."""
    flagged: list[str]
    """Ids of evidence that steers (possible prompt injection: `suspicious_ids`)."""
    conditions: list[Condition]
    """Candidate root-cause conditions, in time order (neither flagged nor a trigger)."""
    steps: list[Condition]
    """Candidate chain steps, in time order (neither flagged nor a trigger)."""
    summary: tuple[str, list[str]]
    """A summary of the incident's own fields, and the evidence it cites."""
    impact: tuple[str, list[str]] | None
    """The impact as the alerts state it, and their ids; None without alerts."""
    disputed: dict[str, str] = field(default_factory=dict)
    """Theories taken back or disputed later in the chat: their id, and the disputing line's
    (`candidates.disputed`); they rank low as candidate conditions."""


def find(incident: Incident) -> Findings:
    """What code finds in `incident` (redacted already, when a model will see it)."""
    triggers = candidate_triggers(incident)
    errors = first_errors(incident)
    flagged = suspicious_ids({item.id: item.text for item in incident.evidence()})
    exclude = [*flagged, *(c.id for c in triggers)]
    return Findings(
        triggers=triggers,
        errors=errors,
        timeline=merged_timeline(incident, triggers, errors),
        flagged=flagged,
        conditions=candidate_conditions(incident, exclude=exclude),
        steps=candidate_steps(incident, [e.first_id for e in errors], exclude=exclude),
        summary=facts_summary(incident),
        impact=impact_from_alerts(incident),
        disputed=disputed(incident),
    )


def input_notes(incident: Incident, found: Findings) -> list[DraftNote]:
    """What a reviewer should know about the incident as given: evidence that addresses the
    model, theories disputed later, and the kinds of evidence it does not have at all."""
    notes: list[DraftNote] = []
    for theory, by in found.disputed.items():
        notes.append(
            DraftNote(
                kind=NoteKind.CONTESTED,
                message=f"[{theory}] was retracted or disputed later ([{by}]): any claim "
                "resting on it is a contested hypothesis",
                evidence_ids=[theory, by],
            )
        )
    if found.flagged:
        notes.append(
            DraftNote(
                kind=NoteKind.SUSPICIOUS_INPUT,
                message="evidence that addresses the model (possible prompt injection) "
                "was shown as data only and cannot be a claim's only support",
                evidence_ids=list(found.flagged),
            )
        )
    kinds = {
        "alerts": incident.alerts,
        "timeline": incident.timeline,
        "logs": incident.logs,
        "chat": incident.chat,
    }
    missing = [name for name, items in kinds.items() if not items]
    if missing:
        given = [name for name in kinds if name not in missing]
        rests = (
            f"the draft rests on its {_listed(given, 'and')} alone"
            if given
            else "only its title and fields can be drafted: root causes, factors and actions "
            "need evidence"
        )
        notes.append(
            DraftNote(
                kind=NoteKind.MISSING_EVIDENCE,
                message=f"the incident has no {_listed(missing, 'and no')}: {rests}; "
                "add what exists and draft again",
            )
        )
    return notes


def _listed(names: Sequence[str], joiner: str) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {joiner} {names[-1]}"
