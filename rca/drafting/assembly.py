"""From checked answers to suggestions: claims, causal chain, confidence, rule-made parts.

The model answers questions (`rca.drafting.questions`); this module holds what turns the
claims that survived validation into `Suggestion`s. Our code sets ids, confidence, origin and
basis, builds the causal chain's links (root causes → trigger → steps → impact, always a DAG),
and writes the parts that code can state exactly: key moments of the timeline, detection and
resolution.

Every suggestion passes one gate (`SuggestionList.add`), whoever wrote it: links and domains
are removed from its text and rationale; a clause that asks to hand over credentials, to
disable monitoring or a safeguard, that addresses the model or the report's writer, or that
blames or names a person (`rca.drafting.steering.hazard`) is cut out, and a suggestion with
nothing left is left out of the draft; each time with a note saying what and why. (The
model's own words meet the same test earlier, whole: `rca.drafting.checks` drops a claim
with any of it.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from rca.domain import (
    ActionItem,
    Basis,
    CausalNode,
    ContributingFactor,
    DraftNote,
    Incident,
    LanguageFlag,
    LessonContent,
    NodeKind,
    NoteKind,
    PostmortemTimelineEntry,
    Suggestion,
    SuggestionContent,
    SuggestionOrigin,
    SuggestionSection,
    TimelineKind,
    check_causal_chain,
)
from rca.drafting.blameless import check_blameless, looks_personal, named_people, person_problem
from rca.drafting.findings import Moment
from rca.drafting.links import strip_links
from rca.drafting.steering import screened

BASE_CONFIDENCE: dict[SuggestionSection, float] = {
    SuggestionSection.SUMMARY: 0.6,
    SuggestionSection.IMPACT: 0.6,
    SuggestionSection.TRIGGER: 0.6,
    SuggestionSection.ROOT_CAUSE: 0.45,
    SuggestionSection.CAUSAL_NODE: 0.45,
    SuggestionSection.CONTRIBUTING_FACTOR: 0.4,
    SuggestionSection.ACTION_ITEM: 0.4,
    SuggestionSection.LESSON: 0.35,
}
"""Starting confidence of a model-written claim, by section (a heuristic, not a probability:
triggers are chosen among code-found candidates, causes are inferred)."""


@dataclass
class Claim:
    """One statement of the model that passed validation."""

    text: str
    evidence_ids: list[str]
    fields: dict[str, Any] = field(default_factory=dict)
    """Section-specific parts: kind, category, priority, owner, heading, trigger id."""
    retried: bool = False
    """Whether it needed a re-ask."""
    note: str | None = None
    """Why the claim reads as it does, when our code changed it (becomes the rationale)."""
    origin: SuggestionOrigin = SuggestionOrigin.MODEL
    """Who wrote it: the model, or our code (rules) or a past incident (history) as fallback."""


def confidence(
    section: SuggestionSection, claim: Claim, incident_ids: set[str], degraded: bool = False
) -> float:
    """Heuristic confidence: the section's base, more for several pieces of incident evidence,
    less when only past postmortems are cited, after a re-ask, or without full retrieval."""
    value = BASE_CONFIDENCE.get(section, 0.4)
    own = [i for i in claim.evidence_ids if i in incident_ids]
    if len(own) >= 2:
        value += 0.1
    if not own:
        value -= 0.15
    if claim.retried:
        value -= 0.1
    if degraded:
        value -= 0.05
    return round(min(0.95, max(0.05, value)), 2)


class SuggestionList:
    """Collects suggestions with sequential ids and blameless-language flags, through the gate
    (see the module docstring); what the gate cuts or leaves out is noted in `notes`."""

    def __init__(
        self,
        people: Iterable[str],
        notes: list[DraftNote] | None = None,
        persons: Iterable[str] | None = None,
        suspicious: Iterable[str] = (),
    ) -> None:
        self.items: list[Suggestion] = []
        self.people = list(people)
        self.persons = (
            list(persons) if persons is not None else [p for p in self.people if looks_personal(p)]
        )
        """Names no suggestion may hold (`persons_of`)."""
        self.notes: list[DraftNote] = notes if notes is not None else []
        """Where the gate's notes go (the draft's notes)."""
        self.suspicious = set(suspicious)
        """Evidence flagged as addressing the model: never cited, never the only basis."""

    @classmethod
    def for_incident(
        cls,
        incident: Incident,
        notes: list[DraftNote] | None = None,
        suspicious: Iterable[str] = (),
    ) -> SuggestionList:
        """A list for a draft of `incident`, its gate's notes appended to `notes`; nothing
        added cites the `suspicious` evidence (see `add`)."""
        return cls(people_of(incident), notes, persons_of(incident), suspicious)

    def add(
        self,
        section: SuggestionSection,
        content: SuggestionContent,
        evidence: Sequence[str],
        confidence: float,
        *,
        origin: SuggestionOrigin = SuggestionOrigin.MODEL,
        basis: Basis = Basis.HYPOTHESIS,
        rationale: str | None = None,
        addresses: Sequence[str] = (),
    ) -> Suggestion | None:
        """Add one suggestion through the gate; returns it (with its id), or None if the gate
        left it out. Citations of suspicious evidence are removed: a reviewer following them
        would land on text written to steer the model; a suggestion that rests on nothing
        else is left out (noted)."""
        cited = list(dict.fromkeys(evidence))
        evidence = [i for i in cited if i not in self.suspicious]
        if cited and not evidence:
            self._note(
                section,
                f"left out a {_MADE[origin]} {section.value.replace('_', ' ')} suggestion "
                f"('{_clip(strip_links(text_of(content))[0])}'): it rests only on evidence "
                "flagged as possible prompt injection",
                cited,
            )
            return None
        kept = self.screen(section, content, evidence, origin)
        if kept is None:
            if isinstance(content, CausalNode):
                self._unlink(content)
            return None
        suggestion = Suggestion(
            id=f"s{len(self.items) + 1}",
            section=section,
            content=kept,
            evidence_ids=list(dict.fromkeys(evidence)),
            confidence=confidence,
            origin=origin,
            basis=basis,
            rationale=strip_links(rationale)[0] if rationale else rationale,
            flags=self.flags(kept),
            addresses=list(addresses),
        )
        self.items.append(suggestion)
        return suggestion

    def screen(
        self,
        section: SuggestionSection,
        content: SuggestionContent,
        evidence: Sequence[str],
        origin: SuggestionOrigin,
    ) -> SuggestionContent | None:
        """The content with links removed and steering or person-naming clauses cut out
        (noted); None if nothing worth keeping is left."""
        text = text_of(content)
        plain, links = strip_links(text)
        kept, cut = screened(plain, self.people, self.persons)
        what = f"a {_MADE[origin]} {section.value.replace('_', ' ')} suggestion"
        ids = list(dict.fromkeys(evidence))
        if kept is None:
            why = "; ".join(dict.fromkeys(w for _c, w in cut))
            self._note(section, f"left out {what} ('{_clip(plain)}'): {why}", ids)
            return None
        done = [f"removed {links} link(s)"] if links else []
        done += [f"cut '{_clip(clause)}' ({why})" for clause, why in cut]
        update: dict[str, Any] = {} if kept == text else {"text": kept}
        if isinstance(content, ActionItem) and content.owner and self._personal(content.owner):
            done.append("removed its owner (it names a person)")
            update["owner"] = None
        if done:
            self._note(section, f"from {what}: {'; '.join(done)}", ids)
        if not update:
            return content
        return kept if isinstance(content, str) else content.model_copy(update=update)

    def _personal(self, name: str) -> bool:
        """Whether an owner names a person, not a team or a role."""
        return looks_personal(name) or person_problem(name, self.people, self.persons) is not None

    def flags(self, content: SuggestionContent) -> list[LanguageFlag]:
        """Blameless-language flags of the content's text."""
        return [
            LanguageFlag(phrase=f.phrase, reason=f.reason, suggestion=f.suggestion)
            for f in check_blameless(text_of(content), self.people)
        ]

    def _note(self, section: SuggestionSection, message: str, ids: list[str]) -> None:
        self.notes.append(
            DraftNote(
                kind=NoteKind.DROPPED, section=section, message=message[:2_000], evidence_ids=ids
            )
        )

    def _unlink(self, node: CausalNode) -> None:
        """Nodes that led to a node left out lead where it led instead (the chain stays whole)."""
        for index, item in enumerate(self.items):
            content = item.content
            if isinstance(content, CausalNode) and node.id in content.leads_to:
                leads = [n for n in content.leads_to if n != node.id]
                leads += [n for n in node.leads_to if n not in leads]
                relinked = content.model_copy(update={"leads_to": leads})
                self.items[index] = item.model_copy(update={"content": relinked})


def text_of(content: SuggestionContent) -> str:
    """The text of a suggestion's content."""
    return content if isinstance(content, str) else str(getattr(content, "text", ""))


_MADE = {
    SuggestionOrigin.MODEL: "model-written",
    SuggestionOrigin.RULES: "rule-made",
    SuggestionOrigin.HISTORY: "borrowed",
}


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def people_of(incident: Incident) -> list[str]:
    """Names that appear as chat authors and timeline actors (for the blameless check)."""
    names = [m.author for m in incident.chat] + [e.actor for e in incident.timeline]
    return sorted({n for n in names if n})


def persons_of(incident: Incident) -> list[str]:
    """The people no suggestion may name: chat authors and actors of actions and observations
    whose handles read as names (`looks_personal`) and are no word of the logs and alerts, and
    the names the evidence puts in a person's place (`named_people`)."""
    services = {s.lower() for s in incident.services}
    logged = [line.text for line in incident.logs] + [alert.text for alert in incident.alerts]
    technical = " ".join(logged).lower()
    acting = (TimelineKind.ACTION, TimelineKind.OBSERVATION)
    humans = [m.author for m in incident.chat]
    humans += [e.actor for e in incident.timeline if e.kind in acting]
    found = [
        h
        for h in humans
        if h
        and looks_personal(h)
        and not re.search(rf"(?<![\w-]){re.escape(h.lower())}(?![\w-])", technical)
    ]
    for text in [incident.title, incident.summary, *(item.text for item in incident.evidence())]:
        found.extend(named_people(text))
    return sorted({n for n in found if n.lower() not in services})


@dataclass(frozen=True)
class ChainPart:
    """A claim placed in the chain."""

    kind: NodeKind
    claim: Claim


def causal_chain(
    roots: Sequence[Claim], trigger: Claim | None, steps: Sequence[Claim], impact: Claim | None
) -> list[tuple[CausalNode, Claim]]:
    """The chain as nodes with their source claims, or [] without a root cause or an impact.

    Links: every root cause → the trigger (or the first step, or the impact); the trigger →
    the first step; each step → the next; the last step → the impact.
    """
    if not roots or impact is None:
        return []
    order: list[tuple[str, NodeKind, Claim]] = []
    if trigger is not None:
        order.append(("trigger", NodeKind.TRIGGER, trigger))
    for number, step in enumerate(steps, start=1):
        kind = NodeKind.SYMPTOM if step.fields.get("kind") == "symptom" else NodeKind.CAUSE
        order.append((f"step-{number}", kind, step))
    order.append(("impact", NodeKind.IMPACT, impact))
    nodes: list[tuple[CausalNode, Claim]] = []
    first = order[0][0]
    for number, root in enumerate(roots, start=1):
        node = CausalNode(
            id=f"root-{number}", kind=NodeKind.ROOT_CAUSE, text=root.text, leads_to=[first]
        )
        nodes.append((node, root))
    for position, (ident, kind, claim) in enumerate(order):
        after = [order[position + 1][0]] if position + 1 < len(order) else []
        nodes.append((CausalNode(id=ident, kind=kind, text=claim.text, leads_to=after), claim))
    check_causal_chain([node for node, _ in nodes])
    return nodes


def add_rule_sections(out: SuggestionList, incident: Incident, timeline: Sequence[Moment]) -> None:
    """Timeline key moments (of the merged `timeline`), detection and resolution: facts code
    can state exactly."""
    for moment in timeline:
        if moment.key is None:
            continue
        text = moment.text if moment.id is None else f"{moment.key}: {moment.text}"
        out.add(
            SuggestionSection.TIMELINE,
            PostmortemTimelineEntry(at=moment.at, text=text),
            [moment.id] if moment.id else [],
            0.9 if moment.id is None else 0.8,
            origin=SuggestionOrigin.RULES,
            basis=Basis.FACT,
        )
    onset = incident.started_at - timedelta(minutes=5)
    after_onset = [a for a in incident.alerts if a.at >= onset]
    first_alert = min(after_onset, key=lambda a: (a.at, a.id), default=None)
    if first_alert is not None:
        delay = first_alert.at - incident.started_at
        minutes = max(0, int(delay.total_seconds() // 60))
        name = f" {first_alert.name}" if first_alert.name else ""
        out.add(
            SuggestionSection.DETECTION,
            f"Detected by the alert{name} at {first_alert.at.astimezone(UTC):%H:%M} UTC, "
            f"{minutes} min after the impact began: {first_alert.text}",
            [first_alert.id],
            0.8,
            origin=SuggestionOrigin.RULES,
            basis=Basis.FACT,
        )
    elif incident.detected_at is not None:
        minutes = int((incident.detected_at - incident.started_at).total_seconds() // 60)
        out.add(
            SuggestionSection.DETECTION,
            f"Detected at {incident.detected_at.astimezone(UTC):%H:%M} UTC, {minutes} min after "
            "the impact began, with no alert firing during the impact",
            [],
            0.6,
            origin=SuggestionOrigin.RULES,
            basis=Basis.FACT,
        )
    if incident.mitigated_at is not None:
        actions = [
            e
            for e in incident.timeline
            if e.kind is TimelineKind.ACTION and e.at <= incident.mitigated_at
        ]
        actions = sorted(actions, key=lambda e: (e.at, e.id))[-2:]
        if actions:
            steps = "; then ".join(e.text for e in actions)
            out.add(
                SuggestionSection.RESOLUTION,
                f"Impact ended at {incident.mitigated_at.astimezone(UTC):%H:%M} UTC after: {steps}",
                [e.id for e in actions],
                0.6,
                origin=SuggestionOrigin.RULES,
                basis=Basis.FACT,
            )


def content_for(section: SuggestionSection, claim: Claim) -> SuggestionContent:
    """The suggestion content a claim becomes in `section`."""
    if section is SuggestionSection.CONTRIBUTING_FACTOR:
        return ContributingFactor(text=claim.text, category=claim.fields["category"])
    if section is SuggestionSection.ACTION_ITEM:
        return ActionItem(
            text=claim.text,
            kind=claim.fields["kind"],
            priority=claim.fields["priority"],
            owner=claim.fields.get("owner") or None,
        )
    if section is SuggestionSection.LESSON:
        return LessonContent(heading=claim.fields["heading"], text=claim.text)
    return claim.text
