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
from rca.drafting.assembly import Claim, text_of
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


RESPONSE_ONLY = (
    "uploads are failing for a lot of users, looking now",  # status
    "customers report the upload button just spins forever",  # a symptom
    "restarted the photo-api pods and uploads work again",  # the fix, and that it worked
    "rolled back the thumbnail config from this morning; no improvement",  # a fix that did not
    "we should add an alert on upload errors before anything else",  # a plan
)


def _chat_only(*said: str) -> Incident:
    started = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    chat = [
        {"id": f"c{n}", "at": f"2026-03-04T10:{n:02d}:00Z", "author": "oncall", "text": text}
        for n, text in enumerate(said, start=1)
    ]
    return Incident.model_validate(
        {"id": "inc-chat", "title": "Photo uploads failing", "severity": "SEV2"}
        | {"services": ["photo-api"], "started_at": started, "chat": chat}
    )


def _composed_without_answers(incident: Incident) -> list[tuple[SuggestionSection, str]]:
    ctx = build_context(incident, PlaceholderTable(), find(incident), [], DraftingOptions(), words)
    draft = compose(ctx, {}, [], Stamp("draft-3", NOW, "m", "p"), degraded=True)
    return [(s.section, text_of(s.content)) for s in draft.suggestions]


def test_without_a_model_a_status_line_a_symptom_a_fix_or_a_plan_is_never_a_root_cause() -> None:
    drafted = _composed_without_answers(_chat_only(*RESPONSE_ONLY))

    sections = {section for section, _ in drafted}
    assert SuggestionSection.ROOT_CAUSE not in sections
    assert SuggestionSection.CAUSAL_NODE not in sections
    [summary] = [text for section, text in drafted if section is SuggestionSection.SUMMARY]
    assert "root cause" not in summary.lower()


def test_without_a_model_a_line_naming_a_missing_safeguard_is_still_offered_as_a_cause() -> None:
    cause = "the thumbnail cache has no eviction and nothing limits how much disk it uses"
    drafted = _composed_without_answers(_chat_only(*RESPONSE_ONLY, cause))

    roots = [text for section, text in drafted if section is SuggestionSection.ROOT_CAUSE]
    assert roots == [cause]


def test_thousands_of_distinct_errors_are_counted_not_all_listed_among_the_findings() -> None:
    data = example().model_dump(mode="json")
    names = ["".join(chr(97 + n // 26**k % 26) for k in range(3)) for n in range(2_000)]
    at = [f"2026-01-15T14:{n // 60:02d}:{n % 60:02d}Z" for n in range(2_000)]
    data["logs"] = [
        {"id": f"e{n}", "at": at[n], "text": f"ERROR handler {name} failed"}
        for n, name in enumerate(names)
    ]
    incident = Incident.model_validate(data)
    found = find(incident)
    ctx = build_context(incident, PlaceholderTable(), found, [], DraftingOptions(), words)

    listed = ctx.variables["findings"].splitlines()
    assert len(found.errors) == 2_000
    assert [line.split("]")[0] for line in listed if line.startswith("First error")] == [
        f"First error [e{n}" for n in range(12)
    ]
    assert listed[-1] == "1988 more distinct errors, not listed"


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
