"""The drafting pipeline: an incident in, a draft of checked, cited suggestions out.

1. Redaction: the incident (and the retrieved postmortems) with secrets and personal data
   replaced by placeholders, one table for the whole draft; if it fails nothing is sent.
2. Retrieval: similar past postmortems; without an index, lexical only or none, and the draft
   says so (degraded).
3. Prompt assembly: facts, evidence by priority within a token budget, what code found
   (candidate triggers, first errors), digests of the similar postmortems.
4. The model: small questions (`rca.sections`) sharing one prompt prefix, stage by stage
   (answers feed later questions), concurrently for hosted models, one at a time in-process.
5. Validation (`rca.validation`): schema, citations (one re-ask with the problems), support;
   what fails is dropped and noted. Then the draft is assembled (`rca.assembly`): chain,
   confidence, timeline, detection, resolution, blameless flags, follow-ups.

Without a model (`llm=None`) the retrieval-only baseline drafts instead.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from prompts import render_question, version_of
from rca import assembly
from rca.analysis import (
    Candidate,
    Condition,
    candidate_conditions,
    candidate_steps,
    candidate_triggers,
    first_errors,
)
from rca.assembly import Claim, SuggestionList
from rca.baseline import baseline_draft, facts_summary, impact_from_alerts
from rca.context import TokenCount, assemble_evidence, postmortem_digest
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
from rca.redaction import PlaceholderTable, Redactor, redact_incident, redact_postmortem
from rca.sections import QUESTIONS, STAGES, Question, QuestionName, json_schema
from rca.validation import Sources, clean, is_insufficient, suspicious_ids

PROMPT = "draft"
QUOTE_CHARS = 240
"""Longest evidence quote used as a root cause or chain step."""
Progress = Callable[[str, float], None]


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


@dataclass
class _Context:
    """Everything the questions share."""

    incident: Incident
    table: PlaceholderTable
    variables: dict[str, str]
    sources: Sources
    candidates: list[Candidate]
    conditions: list[Condition]
    steps: list[Condition]
    incident_ids: set[str]
    notes: list[DraftNote] = field(default_factory=list)
    calls: list[ModelCall] = field(default_factory=list)
    validation_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Answered:
    claims: list[Claim]
    failed: bool = False


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
            ctx = self._context(redacted, table, similar)
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

    def _context(
        self, incident: Incident, table: PlaceholderTable, similar: Sequence[Postmortem]
    ) -> _Context:
        evidence = assemble_evidence(incident, self.options.evidence_tokens, self.count)
        candidates = candidate_triggers(incident)
        findings: list[str] = []
        for c in candidates:
            minutes = int(c.before_impact.total_seconds() // 60)
            findings.append(
                f"Candidate trigger [{c.id}], {minutes} min before the impact: {c.text}"
            )
        texts_by_id = {item.id: item.text for item in incident.evidence()}
        for e in first_errors(incident):
            place = f" on {e.source}" if e.source else ""
            first = " ".join(texts_by_id.get(e.first_id, e.signature).split())[:240]
            findings.append(
                f"First error [{e.first_id}] at {e.first_at.astimezone(UTC):%H:%M:%S}Z{place}, "
                f"seen {e.count}x: {first}"
            )
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
                    f"{label}: {moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC "
                    f"({minutes} min after start)"
                )
        if incident.summary:
            facts.append(f"Reporter's summary: {incident.summary}")
        history = [postmortem_digest(pm, self.options.history_tokens, self.count) for pm in similar]
        texts = {item.id: item.text for item in incident.evidence()}
        for pm in similar:
            texts[pm.id] = _postmortem_text(pm)
        flagged = suspicious_ids({item.id: item.text for item in incident.evidence()})
        changes = [c.id for c in candidates]
        conditions = candidate_conditions(incident, exclude=[*flagged, *changes])
        steps = candidate_steps(incident, exclude=[*flagged, *changes])
        notes: list[DraftNote] = []
        if flagged:
            notes.append(
                DraftNote(
                    kind=NoteKind.SUSPICIOUS_INPUT,
                    message="evidence that addresses the model (possible prompt injection) "
                    "was shown as data only and cannot be a claim's only support",
                    evidence_ids=flagged,
                )
            )
        if evidence.omitted or evidence.truncated:
            notes.append(
                DraftNote(
                    kind=NoteKind.EVIDENCE_OMITTED,
                    message=f"to fit the model's context, {len(evidence.omitted)} evidence "
                    f"items were left out and {len(evidence.truncated)} cut",
                    evidence_ids=[*evidence.omitted, *evidence.truncated][:50],
                )
            )
        return _Context(
            incident=incident,
            table=table,
            variables={
                "facts": "\n".join(facts),
                "evidence": evidence.text,
                "findings": "\n".join(findings) or "nothing found",
                "history": "\n\n".join(history) or "none found",
                "conditions": _listed(_ranked(conditions)),
                "steps": _listed(steps),
                "own_words": "yes" if self.options.own_words else "",
                "trigger": "not drafted",
                "causes": "not drafted",
            },
            sources=Sources(texts, flagged, [pm.id for pm in similar]),
            candidates=candidates,
            conditions=conditions,
            steps=steps,
            incident_ids=set(incident.evidence_ids()),
            notes=notes,
        )

    def _ask_all(self, ctx: _Context, report: Progress) -> dict[QuestionName, _Answered]:
        answers: dict[QuestionName, _Answered] = {}
        total = len(QUESTIONS)
        workers = 1 if self.llm is None or self.llm.is_local else self.options.concurrency
        for stage in STAGES:
            variables = dict(ctx.variables, **_dependencies(ctx, answers))

            def ask(name: QuestionName, variables: dict[str, str] = variables) -> _Answered:
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

    def _ask(self, ctx: _Context, question: Question, variables: dict[str, str]) -> _Answered:
        assert self.llm is not None
        if (question.name == "root_causes" and not ctx.conditions) or (
            question.name == "chain" and not ctx.steps
        ):
            return _Answered([])  # nothing to choose among: the draft falls back
        prompt = render_question(PROMPT, question.name, **variables)
        choices = {
            "trigger": [*(c.id for c in ctx.candidates), "none"],
            "condition": [c.id for c in _ranked(ctx.conditions)],
            "step": [c.id for c in ctx.steps],
        }
        schema = json_schema(question, ctx.sources.ids(), choices, own_words=self.options.own_words)
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
                return _Answered([], failed=True)
            self._record(ctx, label, completion.records)
            started = time.perf_counter()
            claims, problems, dropped = self._check(ctx, question, completion.text, attempt > 1)
            with ctx.lock:
                ctx.validation_s += time.perf_counter() - started
            if not problems or attempt == 2:
                break
            messages = [
                *messages,
                {"role": "assistant", "content": completion.text},
                {"role": "user", "content": _reask(problems)},
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
        return _Answered(claims, failed=bool(problems) and not claims)

    def _check(
        self, ctx: _Context, question: Question, text: str, retried: bool
    ) -> tuple[list[Claim], list[str], list[str]]:
        """Claims that passed; problems worth a re-ask; reasons for claims dropped for good."""
        try:
            answer = question.answer.model_validate(json.loads(text))
        except (ValueError, ValidationError) as err:
            return [], [f"the answer is not valid JSON of the requested shape: {_short(err)}"], []
        raw = _raw_claims(question.name, answer.model_dump(mode="python"))
        known = ctx.sources.ids()
        kept: list[Claim] = []
        problems: list[str] = []
        dropped: list[str] = []
        seen: set[str] = set()
        for position, (body, cited, fields) in enumerate(raw, start=1):
            choice, problem = _choice(ctx, fields)
            if problem:
                problems.append(problem)
            if problem is not None:
                continue
            if choice is not None and question.name != "trigger" and not body.strip():
                chosen = Claim("", [choice[1]], fields, retried)
                _keep(kept, seen, self._quoted(ctx, question.name, chosen))
                continue
            cleaned = clean(body, known)
            if question.name == "root_causes":
                cleaned.text = _without_stem(cleaned.text)
            if is_insufficient(cleaned.text) or cleaned.text.lower() in seen:
                continue
            ids = list(dict.fromkeys([*cited, *cleaned.inline_ids]))
            if choice is not None:
                ids = list(dict.fromkeys([choice[1], *ids]))
            local = question.name in _LOCAL_SUPPORT
            verdict = ctx.sources.check(
                cleaned.text, ids, support_from=ctx.incident_ids if local else None
            )
            if verdict.retry:
                problems.extend(f"item {position}: {p}" for p in verdict.retry)
                if retried:
                    dropped.append(f"dropped '{_clip(cleaned.text)}': {verdict.retry[0]}")
                continue
            claim: Claim | None = Claim(cleaned.text, ids, fields, retried)
            if verdict.drop:
                dropped.append(f"dropped '{_clip(cleaned.text)}': {verdict.drop}")
                claim = self._quoted(ctx, question.name, Claim(cleaned.text, ids, fields, retried))
            elif cleaned.removed_links:
                dropped.append(f"removed {cleaned.removed_links} link(s) from model output")
            _keep(kept, seen, claim)
        return kept, problems, dropped

    def _quoted(self, ctx: _Context, name: QuestionName, claim: Claim) -> Claim | None:
        """Choose-then-quote: a root cause or chain step whose wording the evidence does not
        bear out keeps the model's choice (the condition, or the first evidence line it cited)
        but takes that line's own text; anything else is dropped (None)."""
        if name not in ("root_causes", "chain"):
            return None
        source = next(
            (
                i
                for i in claim.evidence_ids
                if i in ctx.incident_ids and i not in ctx.sources.suspicious
            ),
            None,
        )
        if source is None:
            return None
        quote = _clip(clean(ctx.sources.texts[source]).text, QUOTE_CHARS)
        if is_insufficient(quote):
            return None
        why = (
            "its own wording was not supported by the evidence it cited (see the draft's notes)"
            if claim.text
            else "it was asked to choose, not to word"
        )
        return Claim(
            quote,
            claim.evidence_ids,
            claim.fields,
            claim.retried,
            note=f"quoted from [{source}], the evidence the model chose; {why}",
        )

    def _assemble(
        self,
        ctx: _Context,
        answers: dict[QuestionName, _Answered],
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
        self, ctx: _Context, steps: list[Claim], roots: list[Claim], trigger: Claim | None
    ) -> list[Claim]:
        """Chain steps in the order of the evidence they cite first (the model's order breaks
        ties), without repeats of a root cause or the trigger; at most four."""
        taken = {c.text.lower() for c in roots} | ({trigger.text.lower()} if trigger else set())
        at = {item.id: item.at for item in ctx.incident.evidence()}
        kept = [s for s in steps if s.text.lower() not in taken]
        last = max(at.values(), default=None)

        def when(claim: Claim) -> datetime | None:
            return next((at[i] for i in claim.evidence_ids if i in at), last)

        if last is not None:
            kept.sort(key=lambda c: when(c) or last)
        return kept[:4]

    def _ranked_causes(self, ctx: _Context, out: SuggestionList) -> list[Claim]:
        """Without a root cause from the model, the two candidate conditions that say most
        about mechanisms and missing safeguards, as low-confidence hypotheses."""
        best = _ranked(ctx.conditions)[:2]
        ranked = [
            Claim(_clip(clean(c.text).text, QUOTE_CHARS), [c.id], origin=SuggestionOrigin.RULES)
            for c in best
        ]
        return _offer(
            ctx,
            out,
            ranked,
            0.25,
            "the model chose no root cause; this evidence line ranked highest among the "
            "conditions code found (how the system works or what it lacked), to confirm or reject",
            "no root cause from the model; offering the highest-ranked candidate conditions "
            "as hypotheses",
        )

    def _borrowed_causes(
        self, ctx: _Context, out: SuggestionList, nearest: Postmortem
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
        ctx: _Context,
        out: SuggestionList,
        chosen: list[Claim],
        answers: dict[QuestionName, _Answered],
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
        if answers.get("trigger", _Answered([], failed=True)).failed and ctx.candidates:
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

    def _record(self, ctx: _Context, label: str, records: Sequence[Any]) -> None:
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

    def _note(self, ctx: _Context, kind: NoteKind, question: Question, message: str) -> None:
        section = _SECTION_OF[question.name]
        with ctx.lock:
            ctx.notes.append(DraftNote(kind=kind, section=section, message=message[:2_000]))


def _offer(
    ctx: _Context,
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


_LOCAL_SUPPORT: frozenset[QuestionName] = frozenset({"root_causes", "chain", "factors"})
"""Questions whose claims must rest on this incident's evidence: citing a past incident that
says the same is not support (it is how a small model copies another incident's cause)."""
_STEM = re.compile(r"^(?:the impact happened )?because\s+(?:of\s+)?", re.IGNORECASE)


def _without_stem(text: str) -> str:
    """A root cause without the "The impact happened because" it was asked to complete."""
    rest = _STEM.sub("", text, count=1)
    if rest == text or not rest:
        return text
    return rest[:1].upper() + rest[1:]


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


def _raw_claims(
    name: QuestionName, data: dict[str, Any]
) -> list[tuple[str, list[str], dict[str, Any]]]:
    """(text, cited ids, other fields) for each statement in an answer."""
    if name == "trigger":
        return [(data["explanation"], data["evidence_ids"], {"trigger": data["trigger"]})]
    if name in ("summary", "impact"):
        return [(data[name], data["evidence_ids"], {})]
    if name == "lessons":
        return [
            (item["text"], item["evidence_ids"], {"heading": heading})
            for heading in ("went_well", "went_wrong", "lucky")
            for item in data[heading][:2]
        ]
    key = {"root_causes": "root_causes", "chain": "steps", "factors": "factors"}.get(name, name)
    found: list[tuple[str, list[str], dict[str, Any]]] = []
    for item in data[key]:
        rest = {k: v for k, v in item.items() if k not in ("text", "evidence_ids")}
        if "owner" in rest:
            rest["owner"] = clean(str(rest["owner"])).text[:100] or None
        found.append((item["text"], item["evidence_ids"], rest))
    return found


def _dependencies(ctx: _Context, answers: dict[QuestionName, _Answered]) -> dict[str, str]:
    """The drafted trigger and causes, as shown to later questions."""
    by_id = {c.id: c for c in ctx.candidates}
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
    taken = {i for c in _claims_of(answers, "root_causes") for i in c.evidence_ids[:1]}
    steps = _listed([c for c in ctx.steps if c.id not in taken])
    return {"trigger": trigger, "causes": "\n".join(lines), "steps": steps}


def _claims_of(answers: dict[QuestionName, _Answered], name: QuestionName) -> list[Claim]:
    """The claims kept from one question's answer ([] if it was not asked)."""
    answered = answers.get(name)
    return answered.claims if answered else []


def _keep(kept: list[Claim], seen: set[str], claim: Claim | None) -> None:
    """Keeps `claim` unless it is None or says what a kept claim already says."""
    if claim is not None and claim.text.lower() not in seen:
        seen.add(claim.text.lower())
        kept.append(claim)


def _choice(ctx: _Context, fields: dict[str, Any]) -> tuple[tuple[str, str] | None, str | None]:
    """The item's choice field and value, if it has one; and a problem worth a re-ask if the
    value is not a candidate ("" for "none": skip the item quietly, None: go on)."""
    allowed = {
        "trigger": [c.id for c in ctx.candidates],
        "condition": [c.id for c in ctx.conditions],
        "step": [c.id for c in ctx.steps],
    }
    for key, ids in allowed.items():
        if key in fields:
            value = str(fields[key])
            if value == "none":
                return None, ""
            if value not in ids:
                return None, f"{value!r} is not one of the candidate {key} ids"
            return (key, value), None
    return None, None


def _ranked(found: Sequence[Condition]) -> list[Condition]:
    """Candidates best first (shown and offered to the model in this order)."""
    return sorted(found, key=lambda c: (-c.score, c.at, c.id))


def _listed(found: Sequence[Condition]) -> str:
    """Candidate lines as shown to the model: `[id] text`, one per line."""
    return "\n".join(f"[{c.id}] {_clip(c.text, 300)}" for c in found) or "none found"


def _postmortem_text(pm: Postmortem) -> str:
    parts = [pm.title, pm.summary, pm.trigger or "", *pm.root_causes]
    parts += [f.text for f in pm.contributing_factors] + [n.text for n in pm.causal_chain]
    parts += [a.text for a in pm.action_items]
    return "\n".join(parts)


def _reask(problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in problems[:8])
    return (
        f"Your answer had these problems:\n{listed}\n"
        "Answer the same question again, as JSON only, citing only ids that appear in the "
        "evidence or among the similar past incidents."
    )


def _fraction(answers: dict[QuestionName, _Answered], total: int) -> float:
    return round(0.08 + 0.87 * len(answers) / total, 3)


def _short(err: Exception) -> str:
    return " ".join(str(err).split())[:300]


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


@contextmanager
def _timed(stages: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + round(time.perf_counter() - started, 6)
