"""The retrieval-only baseline drafter: no model, the floor any model must beat in evals.

From the incident's own fields it states the summary, impact, timeline and the most likely
trigger (the change closest before the impact); from the nearest past postmortem it borrows
root causes, causal chain, contributing factors and action items, saying where they come from
and citing that postmortem. Confidence is low on everything borrowed: it is analogy, not
evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from rca.analysis import candidate_triggers, merged_timeline
from rca.assembly import SuggestionList, people_of
from rca.models import (
    ActionStatus,
    Basis,
    Draft,
    Incident,
    Postmortem,
    PostmortemTimelineEntry,
    SuggestionContent,
    SuggestionOrigin,
    SuggestionSection,
)

MODEL = "baseline"
PROMPT_VERSION = "baseline@1"


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


def baseline_draft(
    incident: Incident, similar: Sequence[Postmortem], draft_id: str, now: datetime
) -> Draft:
    """A draft for `incident` from its own fields and the first (nearest) of `similar`."""
    out = SuggestionList(people_of(incident))

    def add(
        section: SuggestionSection,
        content: SuggestionContent,
        evidence: Sequence[str],
        confidence: float,
        origin: SuggestionOrigin = SuggestionOrigin.RULES,
        basis: Basis = Basis.FACT,
    ) -> None:
        out.add(section, content, evidence, confidence, origin=origin, basis=basis)

    summary, cited = facts_summary(incident)
    add(SuggestionSection.SUMMARY, summary, cited, 0.6)
    if (impact := impact_from_alerts(incident)) is not None:
        add(SuggestionSection.IMPACT, impact[0], impact[1], 0.5)

    triggers = candidate_triggers(incident)
    if triggers:
        nearest = triggers[0]
        add(SuggestionSection.TRIGGER, nearest.text, [nearest.id], 0.4, basis=Basis.HYPOTHESIS)

    for moment in merged_timeline(incident):
        if moment.key is None:
            continue
        text = moment.text if moment.id is None else f"{moment.key}: {moment.text}"
        add(
            SuggestionSection.TIMELINE,
            PostmortemTimelineEntry(at=moment.at, text=text),
            [moment.id] if moment.id else [],
            0.7,
        )

    if similar:
        past = similar[0]
        borrowed = (SuggestionOrigin.HISTORY, Basis.HYPOTHESIS)
        for cause in past.root_causes:
            add(
                SuggestionSection.ROOT_CAUSE, f"As in {past.id}: {cause}", [past.id], 0.2, *borrowed
            )
        for node in past.causal_chain:
            add(SuggestionSection.CAUSAL_NODE, node, [past.id], 0.2, *borrowed)
        for factor in past.contributing_factors:
            add(SuggestionSection.CONTRIBUTING_FACTOR, factor, [past.id], 0.2, *borrowed)
        for item in past.action_items:
            fresh = item.model_copy(update={"status": ActionStatus.OPEN})
            add(SuggestionSection.ACTION_ITEM, fresh, [past.id], 0.2, *borrowed)

    return Draft(
        id=draft_id,
        incident_id=incident.id,
        created_at=now,
        model=MODEL,
        prompt_version=PROMPT_VERSION,
        similar_postmortem_ids=[pm.id for pm in similar],
        suggestions=out.items,
    )
