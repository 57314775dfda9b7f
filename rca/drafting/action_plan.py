"""The draft's plan: contributing factors and action items composed from the candidates the
model chose (`rca.drafting.proposals`), each action linked to the drafted root cause or
factor it addresses. Without a choice from the model, the best-ranked candidates are offered
at lower confidence; an action that addresses nothing drafted is left out.
"""

from __future__ import annotations

from rca.domain import SuggestionOrigin, SuggestionSection
from rca.drafting import assembly
from rca.drafting.assembly import Claim, SuggestionList
from rca.drafting.context import DraftContext, clip
from rca.drafting.proposals import ActionCandidate, Proposals


def add_factors(
    ctx: DraftContext, out: SuggestionList, chosen: list[Claim], degraded: bool
) -> dict[str, str]:
    """The chosen candidate factors (the two best candidates if the model chose none), and
    the suggestion id of each candidate kept."""
    proposals = ctx.proposals or Proposals()
    origin = SuggestionOrigin.MODEL
    if not chosen and proposals.factors:
        origin = SuggestionOrigin.RULES
        chosen = [
            Claim(
                f.text, f.evidence_ids, {"factor": f.id, "category": f.category, "source": f.source}
            )
            for f in proposals.factors[:2]
        ]
    kept: dict[str, str] = {}
    for claim in chosen:
        added = out.add(
            SuggestionSection.CONTRIBUTING_FACTOR,
            assembly.content_for(SuggestionSection.CONTRIBUTING_FACTOR, claim),
            claim.evidence_ids,
            _confidence(SuggestionSection.CONTRIBUTING_FACTOR, claim, ctx, origin, degraded),
            origin=origin,
            rationale=f"From {claim.fields.get('source', 'the candidates code assembled')}.",
        )
        if added is not None:  # None: the gate left it out (see `SuggestionList.add`)
            kept[str(claim.fields.get("factor"))] = added.id
    return kept


def add_actions(
    ctx: DraftContext,
    out: SuggestionList,
    chosen: list[Claim],
    roots_at: list[str],
    factors_at: dict[str, str],
    degraded: bool,
) -> None:
    """The chosen candidate actions (the three best if the model chose none), each linked to
    the root cause or factor suggestion it addresses; one that addresses nothing drafted is
    left out."""
    proposals = ctx.proposals or Proposals()
    origin = SuggestionOrigin.MODEL
    if not chosen and proposals.actions:
        origin = SuggestionOrigin.RULES
        chosen = [
            Claim(
                a.text,
                a.evidence_ids,
                {
                    "action": a.id,
                    "kind": a.kind,
                    "priority": a.priority,
                    "owner": a.owner,
                    "source": a.source,
                },
            )
            for a in proposals.actions[:3]
        ]
    by_id = {s.id: s for s in out.items}
    for claim in chosen:
        candidate = proposals.action(str(claim.fields.get("action")))
        if candidate is None:
            continue
        target = _addressed(candidate, roots_at, factors_at)
        if target is None:
            continue
        addressed = by_id[target]
        what = "root cause" if addressed.section is SuggestionSection.ROOT_CAUSE else "factor"
        text = addressed.content if isinstance(addressed.content, str) else addressed.content.text
        out.add(
            SuggestionSection.ACTION_ITEM,
            assembly.content_for(SuggestionSection.ACTION_ITEM, claim),
            claim.evidence_ids or addressed.evidence_ids,
            _confidence(SuggestionSection.ACTION_ITEM, claim, ctx, origin, degraded),
            origin=origin,
            rationale=f"Addresses the {what} {target} ({clip(text, 120)}). "
            f"From {candidate.source}.",
            addresses=[target],
        )


def _addressed(
    candidate: ActionCandidate, roots_at: list[str], factors_at: dict[str, str]
) -> str | None:
    """The suggestion an action candidate addresses: its factor if kept, its root cause,
    else the first root cause; None if nothing was drafted."""
    if candidate.factor is not None and candidate.factor in factors_at:
        return factors_at[candidate.factor]
    if candidate.cause is not None and candidate.cause < len(roots_at):
        return roots_at[candidate.cause]
    if roots_at:
        return roots_at[0]
    return next(iter(factors_at.values()), None)


def _confidence(
    section: SuggestionSection,
    claim: Claim,
    ctx: DraftContext,
    origin: SuggestionOrigin,
    degraded: bool,
) -> float:
    """A proposal's confidence: the section's base, less when code chose it for the model."""
    value = assembly.confidence(section, claim, ctx.incident_ids, degraded)
    return round(max(0.05, value - (0.1 if origin is SuggestionOrigin.RULES else 0.0)), 2)
