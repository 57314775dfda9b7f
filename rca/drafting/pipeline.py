"""The drafting pipeline: an incident in, a draft of checked, cited suggestions out.

Read `Drafter.draft` top to bottom: each stage produces one value the next consumes.

1. Redaction (`rca.redaction`): the incident with secrets and personal data replaced by
   placeholders, and the table for the whole draft; if it fails nothing is sent.
2. Retrieval (`Consulted`): similar past postmortems, redacted with the same table; without an
   index, lexical only or none, and the draft says so (degraded).
3. Findings (`rca.drafting.findings.find`): what code establishes, once: candidate triggers,
   first errors, the merged timeline, flagged evidence, candidate conditions and chain steps,
   the facts summary and the alerts' impact.
4. Prompt context (`rca.drafting.context.build_context`): facts, evidence within a token
   budget, the findings, digests of the similar postmortems, what may be cited.
5. Answers (`rca.drafting.asking.ask_all`): the questions asked stage by stage; each answer
   checked at once into supported claims (`rca.drafting.checks`), or dropped with a note.
6. The draft (`rca.drafting.compose.compose`): claims or their fallbacks, the causal chain,
   rule-made sections, follow-ups.

Without a model (`llm=None`) the retrieval-only baseline (`rca.drafting.baseline`) drafts from
stages 1-3 instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from prompts import version_of
from rca.domain import (
    Draft,
    DraftNote,
    DraftUsage,
    Incident,
    NoteKind,
    Postmortem,
    SuggestionSection,
    new_id,
)
from rca.drafting.asking import SECTION_OF, Answers, Progress, ask_all
from rca.drafting.baseline import baseline_draft
from rca.drafting.compose import Stamp, compose
from rca.drafting.context import DraftContext, DraftingOptions, build_context
from rca.drafting.findings import find, input_notes
from rca.drafting.questions import QUESTIONS
from rca.errors import RcaError
from rca.llm import LlmClient
from rca.llm.tokens import TokenCount
from rca.ports import Embedder, History
from rca.redaction import PlaceholderTable, Redactor, redact_incident, redact_postmortem

__all__ = ["PROMPT", "Consulted", "Drafter", "DraftingOptions", "Progress"]

PROMPT = "draft"


@dataclass(frozen=True)
class Consulted:
    """What retrieval gave a draft: similar past postmortems, redacted with the draft's table,
    and what went wrong finding them."""

    postmortems: list[Postmortem]
    notes: list[DraftNote]
    degraded: bool


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
        return self.llm.config.name if self.llm else "baseline"

    def draft(
        self,
        incident: Incident,
        *,
        progress: Progress | None = None,
        draft_id: str | None = None,
        partial: Callable[[Draft], None] | None = None,
    ) -> Draft:
        """A draft for `incident`. Raises `RedactionFailed` (nothing sent); for model trouble
        only `ModelUnavailable`, when `options.model_required` and no model answered the first
        questions (otherwise failed sections are noted in the draft). `partial`, if given,
        receives the draft so far: first what code found (before any model call), then again
        after each answer (see `partial_draft`)."""
        report = progress or (lambda _message, _fraction: None)
        stages: dict[str, float] = {}
        draft_id = draft_id or new_id("draft")
        with _timed(stages, "redaction"):
            report("redacting secrets and personal data", 0.01)
            redacted, table = redact_incident(incident, self.redactor)
        with _timed(stages, "retrieval"):
            report("finding similar past incidents", 0.03)
            consulted = self.consult(redacted, table)
        if self.llm is None:
            report("drafting from the nearest past incident (no model)", 0.5)
            found = find(redacted)
            draft = baseline_draft(redacted, found, consulted.postmortems, draft_id, self.clock())
            report("done", 1.0)
            return draft.model_copy(
                update={
                    "degraded": consulted.degraded,
                    "notes": [
                        *consulted.notes,
                        *input_notes(redacted, found),
                        *draft.notes,
                    ],
                    "usage": DraftUsage(stages_s=stages),
                }
            )
        with _timed(stages, "prompt"):
            report("assembling the prompt", 0.06)
            found = find(redacted)
            ctx = build_context(
                redacted, table, found, consulted.postmortems, self.options, self.count
            )
        ctx.notes[:0] = consulted.notes
        stamp = Stamp(draft_id, self.clock(), self.model_name, f"{PROMPT}@{version_of(PROMPT)}")
        on_answers = None
        if partial is not None:

            def on_answers(answers: Answers) -> None:
                partial(partial_draft(ctx, answers, consulted, stamp))

            on_answers({})
        started = time.perf_counter()
        answers = ask_all(
            self.llm,
            ctx,
            PROMPT,
            concurrency=self.options.concurrency,
            own_words=self.options.own_words,
            report=report,
            on_answers=on_answers,
            model_required=self.options.model_required,
        )
        asked = time.perf_counter() - started
        with _timed(stages, "assembly"):
            report("checking and assembling the draft", 0.96)
            draft = compose(
                ctx,
                answers,
                consulted.postmortems,
                stamp,
                degraded=consulted.degraded,
                embedder=self.embedder,
            )
        stages["validation"] = ctx.validation_s + stages.pop("assembly")
        stages["model"] = max(0.0, asked - ctx.validation_s)
        report("done", 1.0)
        return draft.model_copy(update={"usage": DraftUsage(calls=ctx.calls, stages_s=stages)})

    def consult(self, incident: Incident, table: PlaceholderTable) -> Consulted:
        """Stage 2: the similar past postmortems of the (redacted) `incident`, redacted with
        the draft's `table`; a failing search degrades the draft, never fails it."""
        if self.history is None:
            found, degraded, notes = [], True, ["no history configured"]
        else:
            try:
                retrieved = self.history.similar(incident, self.options.similar_k)
                found, degraded, notes = retrieved.postmortems, retrieved.degraded, retrieved.notes
            except (RcaError, OSError) as err:
                found, degraded, notes = [], True, [f"search failed: {err}"]
        return Consulted(
            [redact_postmortem(pm, self.redactor, table) for pm in found],
            [
                DraftNote(kind=NoteKind.DEGRADED, message=f"similar-incident search: {note}")
                for note in notes
            ],
            degraded,
        )


SHOWN_EARLY = frozenset(
    {
        SuggestionSection.SUMMARY,
        SuggestionSection.IMPACT,
        SuggestionSection.TIMELINE,
        SuggestionSection.DETECTION,
        SuggestionSection.RESOLUTION,
    }
)
"""Sections a partial draft shows before the model has answered for them: what code wrote
from the facts (replaced by the model's summary and impact once they come)."""


def partial_draft(ctx: DraftContext, answers: Answers, consulted: Consulted, stamp: Stamp) -> Draft:
    """The draft so far, for a reviewer to start reading while the model works: the sections
    the model has answered, and what code wrote from the facts; the rest is still pending (a
    note lists them). Composing it leaves `ctx` as it was."""
    notes = list(ctx.notes)
    try:
        draft = compose(ctx, answers, consulted.postmortems, stamp, degraded=consulted.degraded)
    finally:
        ctx.notes[:] = notes
    done = {SECTION_OF[name] for name in answers}
    if {"root_causes", "chain"} - set(answers):
        done.discard(SuggestionSection.CAUSAL_NODE)
    pending = [SECTION_OF[n].value for n in QUESTIONS if n not in answers]
    kept = [s for s in draft.suggestions if s.section in done or s.section in SHOWN_EARLY]
    note = DraftNote(
        kind=NoteKind.DEGRADED,
        message="still drafting: " + ", ".join(dict.fromkeys(pending)) if pending else "",
    )
    return draft.model_copy(
        update={"suggestions": kept, "notes": [*notes, note] if pending else notes}
    )


@contextmanager
def _timed(stages: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + round(time.perf_counter() - started, 6)
