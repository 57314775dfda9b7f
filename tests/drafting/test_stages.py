"""The drafting stages one at a time: each consumes the value the stage before produced."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rca.domain import (
    DraftNote,
    Incident,
    NodeKind,
    NoteKind,
    Postmortem,
    SuggestionOrigin,
    SuggestionSection,
)
from rca.drafting import Drafter
from rca.drafting.asking import ask
from rca.drafting.assembly import Claim
from rca.drafting.compose import Stamp, compose
from rca.drafting.context import Answered, DraftingOptions, build_context
from rca.drafting.findings import find
from rca.drafting.questions import QUESTIONS
from rca.errors import RcaError
from rca.llm import LlmClient, LlmConfig, ScriptedModel, register_provider
from rca.ports import Retrieved
from rca.redaction import PlaceholderTable, Redactor, redact_incident
from tests.factories import postmortem_data

EXAMPLE = Path(__file__).parents[2] / "examples" / "incidents"
NOW = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
SECRET = "AKIAZ3X7QW9PLM2NB4CD"


def example() -> Incident:
    text = (EXAMPLE / "inc-2026-01-checkout-db-pool.json").read_text()
    return Incident.model_validate_json(text)


def words(text: str) -> int:
    return len(text.split())


class History:
    def __init__(self, found: list[Postmortem] | Exception) -> None:
        self.found = found

    def similar(self, incident: Incident, k: int) -> Retrieved:
        if isinstance(self.found, Exception):
            raise self.found
        return Retrieved(self.found[:k])


def test_consult_redacts_past_postmortems_with_the_drafts_table() -> None:
    past = Postmortem.model_validate(postmortem_data(summary=f"The key {SECRET} leaked."))
    drafter = Drafter(None, History([past]), Redactor())
    incident = example().model_copy(update={"summary": f"key {SECRET} in a log"})
    redacted, table = redact_incident(incident, drafter.redactor)

    consulted = drafter.consult(redacted, table)

    assert SECRET not in consulted.postmortems[0].summary
    # One table for the whole draft: the same secret has the same placeholder in both.
    placeholder = next(word for word in (redacted.summary or "").split() if "SECRET_" in word)
    assert placeholder in consulted.postmortems[0].summary
    assert consulted.notes == [] and not consulted.degraded


@pytest.mark.parametrize(
    ("history", "note"),
    [
        (None, "similar-incident search: no history configured"),
        (History(RcaError("index gone")), "similar-incident search: search failed: index gone"),
        (History(OSError("disk")), "similar-incident search: search failed: disk"),
    ],
)
def test_consult_degrades_instead_of_failing(history: History | None, note: str) -> None:
    consulted = Drafter(None, history, Redactor()).consult(example(), PlaceholderTable())
    assert consulted.postmortems == []
    assert consulted.degraded
    assert consulted.notes == [DraftNote(kind=NoteKind.DEGRADED, message=note)]


def test_compose_without_answers_falls_back_to_what_code_found() -> None:
    """The composition stage alone: no model answered, so every section comes from the
    findings (facts summary, the alerts' impact, the best-ranked conditions as hypotheses)."""
    incident = example()
    found = find(incident)
    ctx = build_context(incident, PlaceholderTable(), found, [], DraftingOptions(), words)
    stamp = Stamp("draft-1", NOW, "fake/none", "draft@test")

    draft = compose(ctx, {}, [], stamp, degraded=False)

    assert (draft.id, draft.created_at, draft.model, draft.prompt_version) == (
        "draft-1",
        NOW,
        "fake/none",
        "draft@test",
    )
    by_section = {s.section: s for s in reversed(draft.suggestions)}
    summary = by_section[SuggestionSection.SUMMARY]
    facts, facts_cited = found.summary
    best = sorted(found.conditions, key=lambda c: (-c.score, c.at, c.id))[:2]
    # The facts, then the nearest candidate trigger and the first root cause, as hypotheses.
    assert summary.content.startswith(facts.rstrip())
    assert "Most likely set off by: " in summary.content
    assert "Probable root cause: " in summary.content
    assert summary.evidence_ids == [*facts_cited, found.triggers[0].id, best[0].id]
    assert summary.origin is SuggestionOrigin.RULES
    assert found.impact is not None
    assert by_section[SuggestionSection.IMPACT].evidence_ids == found.impact[1]
    roots = [s for s in draft.suggestions if s.section is SuggestionSection.ROOT_CAUSE]
    assert [r.evidence_ids for r in roots] == [[c.id] for c in best]
    assert {r.confidence for r in roots} == {0.25}
    nodes = [s.content for s in draft.suggestions if s.section is SuggestionSection.CAUSAL_NODE]
    assert nodes[0].kind is NodeKind.ROOT_CAUSE and nodes[-1].kind is NodeKind.IMPACT
    assert any(n.kind is NoteKind.DEGRADED for n in draft.notes)  # the fallback is said


def test_compose_takes_the_models_chosen_trigger_with_its_reason() -> None:
    incident = example()
    found = find(incident)
    ctx = build_context(incident, PlaceholderTable(), found, [], DraftingOptions(), words)
    nearest = found.triggers[0]

    chosen = Claim("it shipped just before the errors", [nearest.id], {"trigger": nearest.id})
    draft = compose(
        ctx,
        {"trigger": Answered([chosen])},
        [],
        Stamp("draft-2", NOW, "m", "p"),
        degraded=False,
    )
    [trigger] = [s for s in draft.suggestions if s.section is SuggestionSection.TRIGGER]
    assert trigger.content == nearest.text
    assert trigger.rationale == "it shipped just before the errors"


def test_ask_re_asks_once_then_drops_and_notes_an_answer_that_fails_its_checks() -> None:
    """The answering stage alone, with a scripted model that answers in the wrong shape."""
    model = ScriptedModel(reply=lambda _messages: '{"nonsense": true}')
    register_provider("fake", model)
    client = LlmClient(LlmConfig(model="fake/x", max_retries=0), Redactor(), sleep=lambda _s: None)
    incident = example()
    ctx = build_context(incident, PlaceholderTable(), find(incident), [], DraftingOptions(), words)

    answered = ask(client, ctx, "draft", QUESTIONS["summary"], dict(ctx.variables), own_words=True)

    assert answered.claims == [] and answered.failed
    assert [c.section for c in ctx.calls] == ["summary", "summary:retry"]
    assert any(
        n.kind is NoteKind.DROPPED and n.section is SuggestionSection.SUMMARY for n in ctx.notes
    )
    client.close()
