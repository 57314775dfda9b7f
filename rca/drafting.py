"""The drafting pipeline: an incident in, a draft of checked, cited suggestions out.

1. Redaction: the incident (and the retrieved postmortems) with secrets and personal data
   replaced by placeholders, one table for the whole draft; if it fails nothing is sent.
2. Retrieval: similar past postmortems; without an index, lexical only or none, and the draft
   says so (degraded).
3. Prompt assembly (`rca.draft_context`): facts, evidence by priority within a token budget,
   what code found (candidate triggers, first errors, candidate conditions and chain steps),
   digests of the similar postmortems.
4. The model: small questions (`rca.sections`) sharing one prompt prefix, stage by stage
   (answers feed later questions), concurrently for hosted models, one at a time in-process.
   Root causes and chain steps are chosen among the candidates, not invented.
5. Validation (`rca.draft_checks`, `rca.validation`): schema, choices and citations (one
   re-ask with the problems), support; what fails is dropped and noted, a chosen line whose
   wording fails is quoted. Then the draft is assembled (`rca.assembly`): chain, confidence,
   timeline, detection, resolution, blameless flags, follow-ups.

Without a model (`llm=None`) the retrieval-only baseline drafts instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from prompts import render_question, version_of
from rca import assembly
from rca.analysis import ranked
from rca.assembly import Claim, SuggestionList
from rca.baseline import baseline_draft, facts_summary, impact_from_alerts
from rca.context import TokenCount
from rca.draft_checks import QUOTE_CHARS, check_answer, reask
from rca.draft_context import (
    Answered,
    DraftContext,
    DraftingOptions,
    build_context,
    clip,
    dependencies,
)
from rca.errors import RcaError
from rca.followups import find_follow_ups
from rca.llm import LlmClient, ModelCallFailed
from rca.models import (
    Basis,
    Draft,
    DraftNote,
    DraftUsage,
    Incident,
    ModelCall,
    NoteKind,
    Postmortem,
    SuggestionOrigin,
    SuggestionSection,
    new_id,
)
from rca.ports import Embedder, History, Retrieved
from rca.redaction import Redactor, redact_incident, redact_postmortem
from rca.sections import QUESTIONS, STAGES, Question, QuestionName, json_schema
from rca.validation import clean

__all__ = ["PROMPT", "Drafter", "DraftingOptions", "Progress"]

PROMPT = "draft"
Progress = Callable[[str, float], None]


class Drafter:
    """Drafts analyses with one model client, one history and one redactor."""

    def __init__(
        self,
        llm: LlmClient | None,
        history: History | None,
        redactor: Redactor,
        *,
        count: TokenCount | None = None,
        options: DraftingOptions | None = None,
        embedder: Embedder | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.llm = llm
        self.history = history
        self.redactor = redactor
        self.count = count or (llm.token_counter() if llm else (lambda text: len(text.split())))
        self.options = options or DraftingOptions()
        self.embedder = embedder
        self.clock = clock

    @property
    def model_name(self) -> str:
        """The model that drafts (`baseline` without a model)."""
        return self.llm.config.model if self.llm else "baseline"

    def draft(
        self, incident: Incident, *, progress: Progress | None = None, draft_id: str | None = None
    ) -> Draft:
        """A draft for `incident`. Raises `RedactionFailed` (nothing sent) and nothing else for
        model trouble: failed sections are noted in the draft."""
        report = progress or (lambda _message, _fraction: None)
        stages: dict[str, float] = {}
        draft_id = draft_id or new_id("draft")
        with _timed(stages, "redaction"):
            report("redacting secrets and personal data", 0.01)
            redacted, table = redact_incident(incident, self.redactor)
        with _timed(stages, "retrieval"):
            report("finding similar past incidents", 0.03)
            found = self._retrieve(redacted)
            similar = [redact_postmortem(pm, self.redactor, table) for pm in found.postmortems]
        notes = [
            DraftNote(kind=NoteKind.DEGRADED, message=f"similar-incident search: {note}")
            for note in found.notes
        ]
        if self.llm is None:
            report("drafting from the nearest past incident (no model)", 0.5)
            draft = baseline_draft(redacted, similar, draft_id, self.clock())
            report("done", 1.0)
            return draft.model_copy(
                update={
                    "degraded": found.degraded,
                    "notes": notes,
                    "usage": DraftUsage(stages_s=stages),
                }
            )
        with _timed(stages, "prompt"):
            report("assembling the prompt", 0.06)
            ctx = build_context(redacted, table, similar, self.options, self.count)
        ctx.notes[:0] = notes
        started = time.perf_counter()
        answers = self._ask_all(ctx, report)
        asked = time.perf_counter() - started
        with _timed(stages, "assembly"):
            report("checking and assembling the draft", 0.96)
            draft = self._assemble(ctx, answers, similar, draft_id, found.degraded)
        stages["validation"] = ctx.validation_s + stages.pop("assembly")
        stages["model"] = max(0.0, asked - ctx.validation_s)
        report("done", 1.0)
        return draft.model_copy(update={"usage": DraftUsage(calls=ctx.calls, stages_s=stages)})

    # --- steps ------------------------------------------------------------------------------

    def _retrieve(self, incident: Incident) -> Retrieved:
        if self.history is None:
            return Retrieved([], degraded=True, notes=["no history configured"])
        try:
            return self.history.similar(incident, self.options.similar_k)
        except (RcaError, OSError) as err:
            return Retrieved([], degraded=True, notes=[f"search failed: {err}"])

    def _ask_all(self, ctx: DraftContext, report: Progress) -> dict[QuestionName, Answered]:
        answers: dict[QuestionName, Answered] = {}
        total = len(QUESTIONS)
        workers = 1 if self.llm is None or self.llm.is_local else self.options.concurrency
        for stage in STAGES:
            variables = dict(ctx.variables, **dependencies(ctx, answers))

            def ask(name: QuestionName, variables: dict[str, str] = variables) -> Answered:
                return self._ask(ctx, QUESTIONS[name], variables)

            if workers > 1 and len(stage) > 1:
                with ThreadPoolExecutor(max_workers=min(workers, len(stage))) as pool:
                    results = list(pool.map(ask, stage))
            else:
                results = []
                for name in stage:
                    report(f"asking the model: {name.replace('_', ' ')}", _fraction(answers, total))
                    results.append(ask(name))
                    answers[name] = results[-1]
            answers.update(zip(stage, results, strict=True))
            report(f"answered {len(answers)} of {total} questions", _fraction(answers, total))
        return answers

    def _ask(self, ctx: DraftContext, question: Question, variables: dict[str, str]) -> Answered:
        assert self.llm is not None
        if (question.name == "root_causes" and not ctx.conditions) or (
            question.name == "chain" and not ctx.steps
        ):
            return Answered([])  # nothing to choose among: the draft falls back
        prompt = render_question(PROMPT, question.name, **variables)
        schema = json_schema(
            question, ctx.sources.ids(), ctx.choices(), own_words=self.options.own_words
        )
        messages = prompt.messages()
        claims: list[Claim] = []
        problems: list[str] = []
        for attempt in (1, 2):
            label = question.name if attempt == 1 else f"{question.name}:retry"
            try:
                completion = self.llm.complete(
                    messages, table=ctx.table, max_tokens=question.max_tokens, json_schema=schema
                )
            except ModelCallFailed as err:
                self._record(ctx, label, err.records)
                self._note(ctx, NoteKind.SECTION_FAILED, question, f"the model failed: {err}")
                return Answered([], failed=True)
            self._record(ctx, label, completion.records)
            started = time.perf_counter()
            claims, problems, dropped = check_answer(ctx, question, completion.text, attempt > 1)
            with ctx.lock:
                ctx.validation_s += time.perf_counter() - started
            if not problems or attempt == 2:
                break
            messages = [
                *messages,
                {"role": "assistant", "content": completion.text},
                {"role": "user", "content": reask(problems)},
            ]
        for reason in dropped:
            self._note(ctx, NoteKind.DROPPED, question, reason)
        if problems:
            self._note(
                ctx,
                NoteKind.DROPPED,
                question,
                "after a re-ask the answer still had problems: " + "; ".join(problems[:5]),
            )
        return Answered(claims, failed=bool(problems) and not claims)

    def _assemble(
        self,
        ctx: DraftContext,
        answers: dict[QuestionName, Answered],
        similar: Sequence[Postmortem],
        draft_id: str,
        degraded: bool,
    ) -> Draft:
        incident = ctx.incident
        out = SuggestionList(assembly.people_of(incident))
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
            text, cited = facts_summary(incident)
            out.add(SuggestionSection.SUMMARY, text, cited, 0.5, origin=SuggestionOrigin.RULES)
        impact = claims("impact")[:1]
        impact_claim = impact[0] if impact else None
        if impact_claim is not None:
            model(SuggestionSection.IMPACT, impact_claim)
        elif (fallback := impact_from_alerts(incident)) is not None:
            impact_claim = Claim(fallback[0], fallback[1], origin=SuggestionOrigin.RULES)
            out.add(
                SuggestionSection.IMPACT,
                fallback[0],
                fallback[1],
                0.5,
                origin=SuggestionOrigin.RULES,
                basis=Basis.FACT,
            )
        trigger_claim = self._trigger(ctx, out, claims("trigger")[:1], answers)
        roots = claims("root_causes")[:3]
        for claim in roots:
            model(SuggestionSection.ROOT_CAUSE, claim)
        if not roots:
            roots = self._ranked_causes(ctx, out)
        if not roots and similar:
            roots = self._borrowed_causes(ctx, out, similar[0])
        chain = assembly.causal_chain(
            roots,
            trigger_claim,
            self._steps(ctx, claims("chain"), roots, trigger_claim),
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
                    message="no causal chain: it needs at least one supported root cause and "
                    "an impact",
                )
            )
        for claim in claims("factors")[:3]:
            model(SuggestionSection.CONTRIBUTING_FACTOR, claim)
        assembly.add_rule_sections(out, incident)
        for claim in claims("actions")[:4]:
            model(SuggestionSection.ACTION_ITEM, claim)
        for claim in claims("lessons")[:6]:
            model(SuggestionSection.LESSON, claim)
        follow_ups = find_follow_ups(similar, out.items, self.embedder)
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
            id=draft_id,
            incident_id=incident.id,
            created_at=self.clock(),
            model=self.model_name,
            prompt_version=f"{PROMPT}@{version_of(PROMPT)}",
            similar_postmortem_ids=[pm.id for pm in similar],
            suggestions=out.items,
            degraded=degraded or failed,
            notes=ctx.notes,
            follow_ups=follow_ups,
        )

    def _steps(
        self, ctx: DraftContext, steps: list[Claim], roots: list[Claim], trigger: Claim | None
    ) -> list[Claim]:
        """Chain steps in the order of the evidence they cite first (the model's order breaks
        ties), without repeats of a root cause or the trigger; at most four."""
        taken = {c.text.lower() for c in roots} | ({trigger.text.lower()} if trigger else set())
        at = {item.id: item.at.timestamp() for item in ctx.incident.evidence()}
        kept = [s for s in steps if s.text.lower() not in taken]
        # Stable sort: steps citing no incident evidence keep their place at the end.
        kept.sort(key=lambda c: next((at[i] for i in c.evidence_ids if i in at), float("inf")))
        return kept[:4]

    def _ranked_causes(self, ctx: DraftContext, out: SuggestionList) -> list[Claim]:
        """Without a root cause from the model, the two candidate conditions that say most
        about mechanisms and missing safeguards, as low-confidence hypotheses."""
        best = [
            Claim(clip(clean(c.text).text, QUOTE_CHARS), [c.id], origin=SuggestionOrigin.RULES)
            for c in ranked(ctx.conditions)[:2]
        ]
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

    def _borrowed_causes(
        self, ctx: DraftContext, out: SuggestionList, nearest: Postmortem
    ) -> list[Claim]:
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
        self,
        ctx: DraftContext,
        out: SuggestionList,
        chosen: list[Claim],
        answers: dict[QuestionName, Answered],
    ) -> Claim | None:
        """The trigger suggestion: the chosen candidate's own text, the model's reason as its
        rationale; the nearest candidate, with low confidence, if the model failed."""
        by_id = {c.id: c for c in ctx.candidates}
        if chosen:
            candidate = by_id[chosen[0].fields["trigger"]]
            claim = Claim(clean(candidate.text).text, chosen[0].evidence_ids, {}, chosen[0].retried)
            out.add(
                SuggestionSection.TRIGGER,
                claim.text,
                claim.evidence_ids,
                assembly.confidence(SuggestionSection.TRIGGER, claim, ctx.incident_ids),
                rationale=chosen[0].text,
            )
            return claim
        if answers.get("trigger", Answered([], failed=True)).failed and ctx.candidates:
            nearest = ctx.candidates[0]
            claim = Claim(clean(nearest.text).text, [nearest.id], origin=SuggestionOrigin.RULES)
            out.add(
                SuggestionSection.TRIGGER,
                claim.text,
                claim.evidence_ids,
                0.3,
                origin=SuggestionOrigin.RULES,
                rationale="the change closest before the impact (the model gave no answer)",
            )
            return claim
        return None

    def _record(self, ctx: DraftContext, label: str, records: Sequence[Any]) -> None:
        with ctx.lock:
            ctx.calls.extend(
                ModelCall(
                    section=label,
                    model=r.model,
                    ok=r.ok,
                    latency_s=round(r.latency_s, 4),
                    prompt_tokens=r.prompt_tokens,
                    completion_tokens=r.completion_tokens,
                    cost_usd=r.cost_usd,
                    error=r.error,
                )
                for r in records
            )

    def _note(self, ctx: DraftContext, kind: NoteKind, question: Question, message: str) -> None:
        section = _SECTION_OF[question.name]
        with ctx.lock:
            ctx.notes.append(DraftNote(kind=kind, section=section, message=message[:2_000]))


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


_SECTION_OF: dict[QuestionName, SuggestionSection] = {
    "trigger": SuggestionSection.TRIGGER,
    "summary": SuggestionSection.SUMMARY,
    "impact": SuggestionSection.IMPACT,
    "root_causes": SuggestionSection.ROOT_CAUSE,
    "chain": SuggestionSection.CAUSAL_NODE,
    "factors": SuggestionSection.CONTRIBUTING_FACTOR,
    "actions": SuggestionSection.ACTION_ITEM,
    "lessons": SuggestionSection.LESSON,
}


def _fraction(answers: dict[QuestionName, Answered], total: int) -> float:
    return round(0.08 + 0.87 * len(answers) / total, 3)


@contextmanager
def _timed(stages: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + round(time.perf_counter() - started, 6)
