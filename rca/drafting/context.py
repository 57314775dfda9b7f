"""What the drafting questions share: the prompt's variables, what a claim may cite, and the
candidates code found (triggers, conditions, chain steps), built once per draft; and what
earlier answers show later questions.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC

from rca.domain import DraftNote, Incident, ModelCall, NoteKind, Postmortem, SuggestionOrigin
from rca.drafting.assembly import Claim
from rca.drafting.blameless import FIRST_PERSON
from rca.drafting.candidates import Condition, ranked
from rca.drafting.evidence import assemble_evidence, postmortem_digest
from rca.drafting.findings import Findings, input_notes
from rca.drafting.proposals import Proposals, propose
from rca.drafting.questions import QuestionName
from rca.drafting.validation import Sources, clean
from rca.llm.tokens import TokenCount
from rca.redaction import PlaceholderTable

QUOTE_CHARS = 240
"""Longest evidence quote used as a root cause or chain step."""
LISTED_ERRORS = 12
"""Distinct errors listed among the findings at most (the earliest); the others are counted,
so that thousands of different errors do not overflow the model's context."""
CAUSE_FLOOR = 1.0
"""A candidate condition stands as a root cause without a model's choice only if it ranks
above this (`rca.drafting.candidates`): a log line or timeline entry that names no mechanism,
limit or missing safeguard ranks at most 1 (its length); a responder's chat line ranks above it
(as a finding) unless it is a plan, a guess, not knowing or a first-person account, which are
marked down below it. Chat about the response itself is left out by `_RESPONSE`."""
_RESPONSE = re.compile(
    r"\b(?:looking (?:now|into (?:it|this))|investigating|will (?:dig|look|investigate)|"
    r"(?:works?|working|succeed\w*|green|healthy) again|back to normal|"
    r"(?:customers?|users?) (?:(?:are|were|keep) )?(?:report\w*|complain\w*|say|said|see\w*|saw))\b"
    r"|^(?:we )?(?:restarted|rebooted|bounced|redeployed|rolled back|reverted|cleared|flushed|"
    r"failed over|scaled|drained|purged)\b.*\b(?:no (?:improvement|change|effect|difference)|"
    r"no lasting change|did(?:n't| not) help|did nothing)\b",
    re.IGNORECASE,
)
"""A report on the response or the impact, not on the system: that someone is looking
("looking now"), what users report, that a fix worked ("restarted the pods and uploads work
again") or that one did nothing."""


@dataclass(frozen=True)
class DraftingOptions:
    """How much context to give the model and how to ask."""

    similar_k: int = 3
    """Similar postmortems retrieved and shown."""
    evidence_tokens: int = 2_500
    """Budget of the evidence block."""
    history_tokens: int = 240
    """Budget of each similar postmortem's digest."""
    concurrency: int = 1
    """Questions asked at the same time (1 for the in-process model)."""
    own_words: bool = True
    """The model words the root causes and chain steps it chooses; False: it only chooses and
    the chosen evidence lines are quoted (faster, and all a small model does well)."""
    model_required: bool = False
    """When no model answers the first questions (every attempt at the model and its fallbacks
    failed), stop asking and raise `ModelUnavailable` rather than finish the draft from the
    rules alone: a draft job then fails, retryable, instead of storing a draft the model had
    no part in. False (the CLI, evals): the rules-only draft, degraded, failures noted."""


@dataclass
class DraftContext:
    """Everything the questions of one draft share."""

    incident: Incident
    table: PlaceholderTable
    variables: dict[str, str]
    sources: Sources
    found: Findings
    """What code found in the incident: the candidates the questions choose among."""
    incident_ids: set[str]
    similar: list[Postmortem] = field(default_factory=list)
    """The similar past postmortems shown (redacted)."""
    proposals: Proposals | None = None
    """Candidate factors and actions, assembled once the root causes are drafted."""
    notes: list[DraftNote] = field(default_factory=list)
    calls: list[ModelCall] = field(default_factory=list)
    validation_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def choices(self) -> dict[str, list[str]]:
        """The candidate ids each choice field may take, in the order the model is offered
        them (the trigger may also be "none")."""
        return {
            "trigger": [*(c.id for c in self.found.triggers), "none"],
            "condition": [c.id for c in ranked(self.found.conditions)],
            "step": [c.id for c in self.found.steps],
            "factor": [f.id for f in self.proposals.factors] if self.proposals else [],
            "action": [a.id for a in self.proposals.actions] if self.proposals else [],
        }


@dataclass
class Answered:
    """The claims kept from one answer; `failed` when nothing usable came back."""

    claims: list[Claim]
    failed: bool = False


def build_context(
    incident: Incident,
    table: PlaceholderTable,
    found: Findings,
    similar: Sequence[Postmortem],
    options: DraftingOptions,
    count: TokenCount,
) -> DraftContext:
    """The prompt variables, what may be cited, and the first notes, from the redacted
    `incident`, what code `found` in it and the `similar` past postmortems."""
    evidence = assemble_evidence(incident, options.evidence_tokens, count)
    findings: list[str] = []
    for c in found.triggers:
        minutes = int(c.before_impact.total_seconds() // 60)
        findings.append(f"Candidate trigger [{c.id}], {minutes} min before the impact: {c.text}")
    texts = {item.id: item.text for item in incident.evidence()}
    flagged = found.flagged
    for e in found.errors[:LISTED_ERRORS]:
        place = f" on {e.source}" if e.source else ""
        first = " ".join(texts.get(e.first_id, e.signature).split())[:240]
        findings.append(
            f"First error [{e.first_id}] at {e.first_at.astimezone(UTC):%H:%M:%S}Z{place}, "
            f"seen {e.count}x: {first}"
        )
    if len(found.errors) > LISTED_ERRORS:
        findings.append(f"{len(found.errors) - LISTED_ERRORS} more distinct errors, not listed")
    facts = [
        f"Title: {incident.title}",
        f"Severity: {incident.severity.value}",
        f"Services: {', '.join(incident.services) or 'not given'}",
        f"Impact began: {incident.started_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    ]
    for label, moment in (
        ("Detected", incident.detected_at),
        ("Mitigated", incident.mitigated_at),
        ("Resolved", incident.resolved_at),
    ):
        if moment is not None:
            minutes = int((moment - incident.started_at).total_seconds() // 60)
            facts.append(
                f"{label}: {moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({minutes} min after start)"
            )
    if incident.summary:
        facts.append(f"Reporter's summary: {incident.summary}")
    history = [postmortem_digest(pm, options.history_tokens, count) for pm in similar]
    citable = dict(texts, **{pm.id: postmortem_text(pm) for pm in similar})
    notes = input_notes(incident, found)
    if evidence.omitted or evidence.truncated:
        notes.append(
            DraftNote(
                kind=NoteKind.EVIDENCE_OMITTED,
                message=f"to fit the model's context, {len(evidence.omitted)} evidence "
                f"items were left out and {len(evidence.truncated)} cut",
                evidence_ids=[*evidence.omitted, *evidence.truncated][:50],
            )
        )
    return DraftContext(
        incident=incident,
        table=table,
        variables={
            "facts": "\n".join(facts),
            "evidence": evidence.text,
            "findings": "\n".join(findings) or "nothing found",
            "history": "\n\n".join(history) or "none found",
            "conditions": listed(ranked(found.conditions)),
            "steps": listed(found.steps),
            "own_words": "yes" if options.own_words else "",
            "trigger": "not drafted",
            "causes": "not drafted",
            "factor_candidates": "not assembled",
            "action_candidates": "not assembled",
        },
        sources=Sources(citable, flagged, [pm.id for pm in similar]),
        found=found,
        similar=list(similar),
        incident_ids=set(incident.evidence_ids()),
        notes=notes,
    )


def dependencies(ctx: DraftContext, answers: dict[QuestionName, Answered]) -> dict[str, str]:
    """The drafted trigger and causes, as shown to later questions."""
    by_id = {c.id: c for c in ctx.found.triggers}
    trigger = "no change was identified as the trigger"
    chosen = answers.get("trigger")
    if chosen and chosen.claims:
        claim = chosen.claims[0]
        candidate = by_id[claim.fields["trigger"]]
        trigger = f"[{candidate.id}] {candidate.text} -- {claim.text}"
    lines = [f"Trigger: {trigger}"]
    shown: tuple[tuple[QuestionName, str], ...] = (
        ("root_causes", "Root cause"),
        ("factors", "Contributing factor"),
    )
    for name, label in shown:
        answered = answers.get(name)
        for claim in answered.claims if answered else []:
            lines.append(f"{label}: {claim.text} [{', '.join(claim.evidence_ids)}]")
    taken = {i for c in claims_of(answers, "root_causes") for i in c.evidence_ids[:1]}
    steps = listed([c for c in ctx.found.steps if c.id not in taken])
    shown_proposals = {}
    if ctx.proposals is not None:
        shown_proposals = {
            "factor_candidates": "\n".join(
                f"[{f.id}] ({f.category.value}) {clip(f.text, 300)}" for f in ctx.proposals.factors
            )
            or "none found",
            "action_candidates": "\n".join(
                f"[{a.id}] ({a.kind.value}, {a.priority.value}, owner {a.owner}) "
                f"{clip(a.text, 300)}"
                for a in ctx.proposals.actions
            )
            or "none found",
        }
    return {"trigger": trigger, "causes": "\n".join(lines), "steps": steps, **shown_proposals}


def drafted_roots(ctx: DraftContext, answers: dict[QuestionName, Answered]) -> list[Claim]:
    """The root causes the draft will hold: the model's (at most three), else up to two
    best-ranked candidate conditions that read as causes, as hypotheses (quoted)."""
    return claims_of(answers, "root_causes")[:3] or fallback_roots(ctx)


def fallback_roots(ctx: DraftContext) -> list[Claim]:
    """Without a root cause from the model: the two best-ranked candidate conditions that read
    as causes (`reads_as_cause`), quoted; none if no condition does."""
    return [
        Claim(clip(clean(c.text).text, QUOTE_CHARS), [c.id], origin=SuggestionOrigin.RULES)
        for c in ranked(ctx.found.conditions)
        if reads_as_cause(c)
    ][:2]


def reads_as_cause(condition: Condition) -> bool:
    """Whether code may offer `condition` as a root cause on its own: it ranks above
    `CAUSE_FLOOR` and is neither a responder's first-person account nor a report on the
    response or the impact (a status line, what users see, a fix and whether it worked)."""
    text = condition.text
    return (
        condition.score > CAUSE_FLOOR
        and not FIRST_PERSON.search(text)
        and not _RESPONSE.search(text)
    )


def drafted_trigger(ctx: DraftContext, answers: dict[QuestionName, Answered]) -> Claim | None:
    """The trigger the draft will hold: the model's chosen candidate (its own text), else the
    nearest candidate if the model failed to answer, else none."""
    by_id = {c.id: c for c in ctx.found.triggers}
    chosen = claims_of(answers, "trigger")[:1]
    if chosen:
        candidate = by_id[chosen[0].fields["trigger"]]
        return Claim(clean(candidate.text).text, chosen[0].evidence_ids, {}, chosen[0].retried)
    if answers.get("trigger", Answered([], failed=True)).failed and ctx.found.triggers:
        nearest = ctx.found.triggers[0]
        return Claim(clean(nearest.text).text, [nearest.id], origin=SuggestionOrigin.RULES)
    return None


def with_proposals(ctx: DraftContext, answers: dict[QuestionName, Answered]) -> Proposals:
    """The candidate factors and actions, assembled (once) from the drafted causes."""
    with ctx.lock:
        if ctx.proposals is None:
            ctx.proposals = propose(
                ctx.incident,
                ctx.found,
                drafted_roots(ctx, answers),
                drafted_trigger(ctx, answers),
                ctx.similar,
            )
        return ctx.proposals


def claims_of(answers: dict[QuestionName, Answered], name: QuestionName) -> list[Claim]:
    """The claims kept from one question's answer ([] if it was not asked)."""
    answered = answers.get(name)
    return answered.claims if answered else []


def listed(found: Sequence[Condition]) -> str:
    """Candidate lines as shown to the model: `[id] text`, one per line."""
    return "\n".join(f"[{c.id}] {clip(c.text, 300)}" for c in found) or "none found"


def postmortem_text(pm: Postmortem) -> str:
    """A past postmortem's words, for the check that a claim does not merely restate it."""
    parts = [pm.title, pm.summary, pm.trigger or "", *pm.root_causes]
    parts += [f.text for f in pm.contributing_factors] + [n.text for n in pm.causal_chain]
    parts += [a.text for a in pm.action_items]
    return "\n".join(parts)


def clip(text: str, limit: int = 160) -> str:
    """`text` cut at a word boundary to about `limit` characters, marked with an ellipsis."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"
