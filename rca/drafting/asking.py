"""Stage 5 of drafting: the questions asked, each answer checked into claims.

Small questions (`rca.drafting.questions`) share one prompt prefix and are asked stage by
stage (answers feed later questions: the trigger and root causes are shown to the chain,
factor and action questions), concurrently for hosted models, one at a time in-process. Every
answer goes through the checks (`rca.drafting.checks`) at once: schema, choices and citations,
with one re-ask naming the problems; what still fails is dropped and noted. Model calls and
their cost are recorded on the context.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prompts import render_question
from rca.domain import DraftNote, ModelCall, NoteKind, SuggestionSection
from rca.drafting.assembly import Claim
from rca.drafting.checks import check_answer, reask
from rca.drafting.context import Answered, DraftContext, dependencies, with_proposals
from rca.drafting.questions import QUESTIONS, STAGES, Question, QuestionName, json_schema
from rca.errors import ModelUnavailable
from rca.llm import LlmClient, ModelCallFailed

Progress = Callable[[str, float], None]
"""A progress report: what is happening, and the fraction done (0 to 1)."""

Answers = dict[QuestionName, Answered]
OnAnswers = Callable[[Answers], None]
"""Called with the answers so far whenever more have come in (a copy: keep it)."""

SECTION_OF: dict[QuestionName, SuggestionSection] = {
    "trigger": SuggestionSection.TRIGGER,
    "summary": SuggestionSection.SUMMARY,
    "impact": SuggestionSection.IMPACT,
    "root_causes": SuggestionSection.ROOT_CAUSE,
    "chain": SuggestionSection.CAUSAL_NODE,
    "factors": SuggestionSection.CONTRIBUTING_FACTOR,
    "actions": SuggestionSection.ACTION_ITEM,
    "lessons": SuggestionSection.LESSON,
}
"""The draft section each question's claims become."""

WRITES = frozenset({"summary", "impact", "factors", "actions", "lessons"})
"""Questions whose answers are prose a reviewer reads: a split model's writer answers them."""

CHOOSES: dict[QuestionName, str] = {
    "root_causes": "condition",
    "chain": "step",
    "factors": "factor",
    "actions": "action",
}
"""Questions whose answer is a choice among code-found candidates, and the choice field."""


def ask_all(
    llm: LlmClient,
    ctx: DraftContext,
    prompt: str,
    *,
    concurrency: int,
    own_words: bool,
    report: Progress,
    on_answers: OnAnswers | None = None,
    model_required: bool = False,
) -> dict[QuestionName, Answered]:
    """Every question of `prompt`, stage by stage; the checked claims of each answer.
    `on_answers` sees the answers so far after each question (asked one at a time) or stage.
    `model_required`: raise `ModelUnavailable` after a stage if no model call has succeeded
    yet, so a provider that is down costs one stage's attempts, not every question's."""
    answers: dict[QuestionName, Answered] = {}
    total = len(QUESTIONS)
    workers = 1 if llm.is_local else concurrency
    for stage in STAGES:
        if {"factors", "actions"} & set(stage):
            with_proposals(ctx, answers)  # candidates from the drafted root causes
        variables = dict(ctx.variables, **dependencies(ctx, answers))

        def one(name: QuestionName, variables: dict[str, str] = variables) -> Answered:
            return ask(llm, ctx, prompt, QUESTIONS[name], variables, own_words=own_words)

        if workers > 1 and len(stage) > 1:
            with ThreadPoolExecutor(max_workers=min(workers, len(stage))) as pool:
                results = list(pool.map(one, stage))
        else:
            results = []
            for name in stage:
                report(f"asking the model: {name.replace('_', ' ')}", _fraction(answers, total))
                results.append(one(name))
                answers[name] = results[-1]
                if on_answers is not None and name != stage[-1]:
                    on_answers(dict(answers))
        answers.update(zip(stage, results, strict=True))
        if model_required and ctx.calls and not any(call.ok for call in ctx.calls):
            raise ModelUnavailable(_unavailable(ctx.calls))
        if on_answers is not None:
            on_answers(dict(answers))
        report(f"answered {len(answers)} of {total} questions", _fraction(answers, total))
    return answers


def ask(
    llm: LlmClient,
    ctx: DraftContext,
    prompt: str,
    question: Question,
    variables: dict[str, str],
    *,
    own_words: bool,
) -> Answered:
    """One question asked (and re-asked once with the problems of its answer), checked."""
    if not ctx.choices().get(CHOOSES.get(question.name, ""), True):
        return Answered([])  # nothing to choose among: the draft falls back
    rendered = render_question(prompt, question.name, **variables)
    schema = json_schema(question, ctx.sources.ids(), ctx.choices(), own_words=own_words)
    messages = rendered.messages()
    claims: list[Claim] = []
    problems: list[str] = []
    for attempt in (1, 2):
        label = question.name if attempt == 1 else f"{question.name}:retry"
        try:
            completion = llm.complete(
                messages,
                table=ctx.table,
                max_tokens=question.max_tokens,
                json_schema=schema,
                writing=question.name in WRITES,
            )
        except ModelCallFailed as err:
            _record(ctx, label, err.records)
            _note(ctx, NoteKind.SECTION_FAILED, question, f"the model failed: {err}")
            return Answered([], failed=True)
        _record(ctx, label, completion.records)
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
        _note(ctx, NoteKind.DROPPED, question, reason)
    if problems:
        _note(
            ctx,
            NoteKind.DROPPED,
            question,
            "after a re-ask the answer still had problems: " + "; ".join(problems[:5]),
        )
    return Answered(claims, failed=bool(problems) and not claims)


def _unavailable(calls: Sequence[ModelCall]) -> str:
    """Why nothing was drafted, in words for the job's error: the models, the attempts, the
    last provider error."""
    models = ", ".join(dict.fromkeys(call.model for call in calls))
    last = (calls[-1].error or "unknown").rstrip(". ")
    return (
        f"the model provider failed: no answer from {models} in {len(calls)} attempts; "
        f"last error: {last}. Nothing was drafted; try again later"
    )


def _record(ctx: DraftContext, label: str, records: Sequence[Any]) -> None:
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


def _note(ctx: DraftContext, kind: NoteKind, question: Question, message: str) -> None:
    with ctx.lock:
        ctx.notes.append(
            DraftNote(kind=kind, section=SECTION_OF[question.name], message=message[:2_000])
        )


def _fraction(answers: dict[QuestionName, Answered], total: int) -> float:
    return round(0.08 + 0.87 * len(answers) / total, 3)
