"""The retrieval-only baseline drafter: no model, the floor any model must beat in evals.

From the incident's own fields it states the summary, impact, timeline and the most likely
trigger (the change closest before the impact); from the nearest past postmortem it borrows
root causes, causal chain, contributing factors and action items, saying where they come from
and citing that postmortem. Confidence is low on everything borrowed: it is analogy, not
evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rca.domain import (
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
from rca.drafting.assembly import SuggestionList
from rca.drafting.findings import Findings

MODEL = "baseline"
PROMPT_VERSION = "baseline@1"


def baseline_draft(
    incident: Incident,
    found: Findings,
    similar: Sequence[Postmortem],
    draft_id: str,
    now: datetime,
) -> Draft:
    """A draft for `incident` from what code `found` in it and the first (nearest) of
    `similar`."""
    out = SuggestionList.for_incident(incident, suspicious=found.flagged)

    def add(
        section: SuggestionSection,
        content: SuggestionContent,
        evidence: Sequence[str],
        confidence: float,
        origin: SuggestionOrigin = SuggestionOrigin.RULES,
        basis: Basis = Basis.FACT,
    ) -> None:
        out.add(section, content, evidence, confidence, origin=origin, basis=basis)

    summary, cited = found.summary
    add(SuggestionSection.SUMMARY, summary, cited, 0.6)
    if (impact := found.impact) is not None:
        add(SuggestionSection.IMPACT, impact[0], impact[1], 0.5)

    if found.triggers:
        nearest = found.triggers[0]
        add(SuggestionSection.TRIGGER, nearest.text, [nearest.id], 0.4, basis=Basis.HYPOTHESIS)

    for moment in found.timeline:
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
        notes=out.notes,
    )
