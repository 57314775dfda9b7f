"""Stage 6 of drafting: the checked claims composed into a draft.

Our code, not the model, decides what a draft holds: the model's claims where they survived
the checks; where they did not, what code found (the facts summary, the alerts' impact, the
nearest candidate trigger, the best-ranked candidate conditions) or, last, the nearest past
incident's causes, each at low confidence with a note saying so. Then the causal chain (root
causes → trigger → steps → impact), the rule-made sections (timeline, detection, resolution)
and follow-ups of unfinished actions from similar past incidents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rca.domain import (
    Basis,
    Draft,
    DraftNote,
    NoteKind,
    Postmortem,
    SuggestionOrigin,
    SuggestionSection,
)
from rca.drafting import assembly
from rca.drafting.action_plan import add_actions, add_factors
from rca.drafting.assembly import Claim, SuggestionList
from rca.drafting.context import (
    Answered,
    DraftContext,
    drafted_roots,
    drafted_trigger,
    fallback_roots,
)
from rca.drafting.followups import find_follow_ups
from rca.drafting.questions import QuestionName
from rca.ports import Embedder


@dataclass(frozen=True)
class Stamp:
    """What identifies a draft: set by the pipeline, never by a model."""

    draft_id: str
    created_at: datetime
    model: str
    prompt_version: str


def compose(
    ctx: DraftContext,
    answers: dict[QuestionName, Answered],
    similar: Sequence[Postmortem],
    stamp: Stamp,
    *,
    degraded: bool,
    embedder: Embedder | None = None,
) -> Draft:
    """The draft: every section from the model's checked claims or its fallback."""
    incident = ctx.incident
    out = SuggestionList.for_incident(incident, ctx.notes, ctx.sources.suspicious)
    ids = ctx.incident_ids

    def claims(name: QuestionName) -> list[Claim]:
        return answers[name].claims if name in answers else []

    def model(section: SuggestionSection, claim: Claim, rationale: str | None = None) -> None:
        out.add(
            section,
            assembly.content_for(section, claim),
            claim.evidence_ids,
            assembly.confidence(section, claim, ids, degraded) - (0.1 if claim.note else 0.0),
            rationale=rationale or claim.note,
        )

    summary = claims("summary")[:1]
    if summary:
        model(SuggestionSection.SUMMARY, summary[0])
    else:
        text, cited = _facts_summary(ctx, answers)
        out.add(SuggestionSection.SUMMARY, text, cited, 0.5, origin=SuggestionOrigin.RULES)
    impact = claims("impact")[:1]
    impact_claim = impact[0] if impact else None
    if impact_claim is not None:
        model(SuggestionSection.IMPACT, impact_claim)
    elif (fallback := ctx.found.impact) is not None:
        impact_claim = Claim(fallback[0], fallback[1], origin=SuggestionOrigin.RULES)
        out.add(
            SuggestionSection.IMPACT,
            fallback[0],
            fallback[1],
            0.5,
            origin=SuggestionOrigin.RULES,
            basis=Basis.FACT,
        )
    trigger_claim = _trigger(ctx, out, claims("trigger")[:1], answers)
    roots = claims("root_causes")[:3]
    for claim in roots:
        model(SuggestionSection.ROOT_CAUSE, claim)
    if not roots:
        roots = _ranked_causes(ctx, out)
    if not roots and similar:
        roots = _borrowed_causes(ctx, out, similar[0])
    chain = assembly.causal_chain(
        roots,
        trigger_claim,
        _steps(ctx, claims("chain"), roots, trigger_claim),
        impact_claim,
    )
    for node, claim in chain:
        out.add(
            SuggestionSection.CAUSAL_NODE,
            node,
            claim.evidence_ids,
            assembly.confidence(SuggestionSection.CAUSAL_NODE, claim, ids, degraded),
            origin=claim.origin,
            rationale=claim.note,
        )
    if not chain:
        ctx.notes.append(
            DraftNote(
                kind=NoteKind.SECTION_FAILED,
                section=SuggestionSection.CAUSAL_NODE,
                message="no causal chain: it needs at least one supported root cause and an impact",
            )
        )
    roots_at = [s.id for s in out.items if s.section is SuggestionSection.ROOT_CAUSE]
    factors_at = add_factors(ctx, out, claims("factors")[:4], degraded)
    assembly.add_rule_sections(out, incident, ctx.found.timeline)
    add_actions(ctx, out, claims("actions")[:5], roots_at, factors_at, degraded)
    for claim in claims("lessons")[:6]:
        model(SuggestionSection.LESSON, claim)
    follow_ups = find_follow_ups(similar, out.items, embedder)
    for follow in follow_ups:
        owner = f", owner {follow.action.owner}" if follow.action.owner else ""
        out.add(
            SuggestionSection.LESSON,
            assembly.content_for(
                SuggestionSection.LESSON,
                Claim(
                    f"An action item from {follow.postmortem_id} ({follow.postmortem_title})"
                    f" was still {follow.action.status.value.replace('_', ' ')}{owner}: "
                    f"{follow.action.text}",
                    [follow.postmortem_id],
                    {"heading": "went_wrong"},
                ),
            ),
            [follow.postmortem_id],
            0.5,
            origin=SuggestionOrigin.HISTORY,
            basis=Basis.FACT,
        )
    failed = any(a.failed for a in answers.values())
    return Draft(
        id=stamp.draft_id,
        incident_id=incident.id,
        created_at=stamp.created_at,
        model=stamp.model,
        prompt_version=stamp.prompt_version,
        similar_postmortem_ids=[pm.id for pm in similar],
        suggestions=out.items,
        degraded=degraded or failed,
        notes=ctx.notes,
        follow_ups=follow_ups,
    )


def _steps(
    ctx: DraftContext, steps: list[Claim], roots: list[Claim], trigger: Claim | None
) -> list[Claim]:
    """Chain steps in the order of the evidence they cite first (the model's order breaks
    ties), without repeats of a root cause or the trigger; at most four."""
    taken = {c.text.lower() for c in roots} | ({trigger.text.lower()} if trigger else set())
    at = {item.id: item.at.timestamp() for item in ctx.incident.evidence()}
    kept = [s for s in steps if s.text.lower() not in taken]
    # Stable sort: steps citing no incident evidence keep their place at the end.
    kept.sort(key=lambda c: next((at[i] for i in c.evidence_ids if i in at), float("inf")))
    return kept[:4]


def _ranked_causes(ctx: DraftContext, out: SuggestionList) -> list[Claim]:
    """Without a root cause from the model, up to two candidate conditions that say most
    about mechanisms and missing safeguards, as low-confidence hypotheses; none when no
    condition reads as a cause (`context.reads_as_cause`: not a status line, a fix or a
    plan)."""
    best = fallback_roots(ctx)
    return _offer(
        ctx,
        out,
        best,
        0.25,
        "the model chose no root cause; this evidence line ranked highest among the "
        "conditions code found (how the system works or what it lacked), to confirm or reject",
        "no root cause from the model; offering the highest-ranked candidate conditions "
        "as hypotheses",
    )


def _borrowed_causes(ctx: DraftContext, out: SuggestionList, nearest: Postmortem) -> list[Claim]:
    """Without a supported root cause from the model, the nearest past incident's root
    causes, offered as low-confidence hypotheses that cite it (as the baseline does)."""
    borrowed = [
        Claim(f"As in {nearest.id}: {cause}", [nearest.id], origin=SuggestionOrigin.HISTORY)
        for cause in nearest.root_causes[:2]
    ]
    return _offer(
        ctx,
        out,
        borrowed,
        0.2,
        "the model gave no root cause the evidence supports; this is the cause of the "
        "most similar past incident, to confirm or reject",
        f"no supported root cause from the model; offering those of {nearest.id} as hypotheses",
    )


def _trigger(
    ctx: DraftContext,
    out: SuggestionList,
    chosen: list[Claim],
    answers: dict[QuestionName, Answered],
) -> Claim | None:
    """The trigger suggestion (`drafted_trigger`): the chosen candidate's own text, the
    model's reason as its rationale; the nearest candidate, with low confidence, if the model
    failed."""
    claim = drafted_trigger(ctx, answers)
    if claim is None:
        return None
    if chosen:
        out.add(
            SuggestionSection.TRIGGER,
            claim.text,
            claim.evidence_ids,
            assembly.confidence(SuggestionSection.TRIGGER, claim, ctx.incident_ids),
            rationale=chosen[0].text,
        )
    else:
        out.add(
            SuggestionSection.TRIGGER,
            claim.text,
            claim.evidence_ids,
            0.3,
            origin=SuggestionOrigin.RULES,
            rationale="the change closest before the impact (the model gave no answer)",
        )
    return claim


def _offer(
    ctx: DraftContext,
    out: SuggestionList,
    claims: list[Claim],
    confidence: float,
    rationale: str,
    message: str,
) -> list[Claim]:
    """Fallback root causes added as low-confidence hypotheses, with a note saying so."""
    for claim in claims:
        out.add(
            SuggestionSection.ROOT_CAUSE,
            claim.text,
            claim.evidence_ids,
            confidence,
            origin=claim.origin,
            rationale=rationale,
        )
    if claims:
        ctx.notes.append(
            DraftNote(
                kind=NoteKind.DEGRADED,
                section=SuggestionSection.ROOT_CAUSE,
                message=message,
                evidence_ids=list(dict.fromkeys(i for c in claims for i in c.evidence_ids)),
            )
        )
    return claims


def _facts_summary(
    ctx: DraftContext, answers: dict[QuestionName, Answered]
) -> tuple[str, list[str]]:
    """The summary code writes when the model wrote none: the facts (what failed, the measured
    times), then the drafted trigger and first root cause, each said to be a hypothesis."""
    text, cited = ctx.found.summary
    parts = [text.rstrip()]
    trigger = drafted_trigger(ctx, answers)
    if trigger is not None:
        parts.append(f"Most likely set off by: {trigger.text.rstrip('.')}.")
        cited = [*cited, *trigger.evidence_ids[:1]]
    roots = drafted_roots(ctx, answers)[:1]
    if roots:
        parts.append(f"Probable root cause: {roots[0].text.rstrip('.')}.")
        cited = [*cited, *roots[0].evidence_ids[:1]]
    return " ".join(parts), list(dict.fromkeys(cited))
