"""The drafting pipeline with a scripted model behind litellm's real custom-provider path: the
whole draft, redaction, re-asks, a failing or required model, partial drafts and a split model."""

from __future__ import annotations

import json
import logging

import pytest

from rca.domain import (
    CausalNode,
    Draft,
    Incident,
    NodeKind,
    NoteKind,
    SuggestionOrigin,
    SuggestionSection,
    check_causal_chain,
)
from rca.drafting import Drafter, DraftingOptions
from rca.errors import ModelUnavailable
from rca.llm import LlmClient, LlmConfig, Message, ScriptedModel, register_provider
from rca.redaction import RedactionFailed, Redactor
from rca.testing import fake_analyst, question_of
from tests.drafting._pipeline_helpers import NOW, drafter, example, replying, sections
from tests.support import CANARIES


def test_a_whole_draft_is_grounded_structured_and_accounted_for(fake: ScriptedModel) -> None:
    incident = example()
    progress: list[tuple[str, float]] = []
    draft = drafter().draft(incident, progress=lambda m, f: progress.append((m, f)))

    assert draft.model == "fake/analyst" and draft.prompt_version == "draft@5"
    citable = incident.evidence_ids()
    for suggestion in draft.suggestions:
        assert set(suggestion.evidence_ids) <= citable, suggestion
        assert 0.0 < suggestion.confidence < 1.0
    assert sections(draft, SuggestionSection.TRIGGER)[0].evidence_ids[0] == "t2"  # the deploy
    assert sections(draft, SuggestionSection.SUMMARY) and sections(draft, SuggestionSection.IMPACT)
    assert sections(draft, SuggestionSection.ROOT_CAUSE)
    assert sections(draft, SuggestionSection.ACTION_ITEM)
    assert sections(draft, SuggestionSection.DETECTION)[0].origin is SuggestionOrigin.RULES
    nodes: list[CausalNode] = [s.content for s in sections(draft, SuggestionSection.CAUSAL_NODE)]
    check_causal_chain(nodes)
    kinds = [n.kind for n in nodes]
    assert kinds[0] is NodeKind.ROOT_CAUSE and kinds[-1] is NodeKind.IMPACT
    assert NodeKind.TRIGGER in kinds
    # One call per question, all sharing one system message and the context prefix.
    assert [c.section for c in draft.usage.calls] == [
        "trigger", "lessons", "root_causes", "summary", "impact", "chain", "factors", "actions"
    ]  # fmt: skip
    assert len({m[0]["content"] for m in fake.received}) == 1
    assert set(draft.usage.stages_s) == {"redaction", "retrieval", "prompt", "model", "validation"}
    assert draft.usage.prompt_tokens > 0
    assert progress[0][1] < progress[-1][1] == 1.0
    assert [f for _m, f in progress] == sorted(f for _m, f in progress)
    # The example carries a planted instruction in chat; the draft says so.
    assert any(
        n.kind is NoteKind.SUSPICIOUS_INPUT and n.evidence_ids == ["c4"] for n in draft.notes
    )
    assert draft.degraded  # no history was configured
    # Every outbound payload asked for a JSON schema with the evidence ids as an enum.
    schema = fake.options[0]["response_format"]["json_schema"]["schema"]
    assert "t2" in schema["properties"]["trigger"]["enum"]


def test_concurrent_questions_give_the_same_draft(fake: ScriptedModel) -> None:
    one = drafter().draft(example(), draft_id="d1")
    many = drafter(concurrency=4).draft(example(), draft_id="d1")
    assert [s.content for s in many.suggestions] == [s.content for s in one.suggestions]


def test_no_canary_leaves_in_any_payload_retry_log_or_draft(
    fake: ScriptedModel, caplog: pytest.LogCaptureFixture
) -> None:
    base = example().model_dump(mode="json")
    at = base["logs"][0]["at"]
    logs = [
        {"id": f"secret-{n}", "at": at, "source": "api", "text": f"ERROR request failed: {line}"}
        for n, (_name, line, _secret) in enumerate(CANARIES)
    ]
    # The same secret twice, two secrets in one line, one split over two lines.
    first, second = CANARIES[0][2], CANARIES[2][2]
    logs.append({"id": "dup", "at": at, "text": f"ERROR again {first} and {second}"})
    logs.append({"id": "split", "at": at, "text": f"ERROR token {second[:10]}\n{second[10:]}"})
    incident = Incident.model_validate({**base, "logs": base["logs"] + logs})
    # The first call times out and is sent again; the summary answer is re-asked once: both
    # are further payloads carrying the whole context.
    fake.failures.append(ScriptedModel.timeout())
    asked: dict[str, int] = {}

    def summary(messages: list[Message]) -> str:
        asked["summary"] = asked.get("summary", 0) + 1
        if asked["summary"] == 1:
            return '{"summary": "cites nothing", "evidence_ids": ["nope-1"]}'
        return fake_analyst(messages)

    fake.reply = replying({"summary": summary})
    with caplog.at_level(logging.DEBUG):
        draft = drafter(retries=1).draft(incident, draft_id="canary")
    assert asked["summary"] == 2
    assert [c.ok for c in draft.usage.calls[:2]] == [False, True]
    assert len(fake.received) == len(draft.usage.calls) == 10
    payloads = json.dumps(fake.received)
    dumped = draft.model_dump_json()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    survivors = [
        name
        for name, _line, secret in CANARIES
        if secret in payloads or secret in dumped or secret in logged
    ]
    assert survivors == []
    assert "SECRET_1" in payloads


def test_a_redaction_failure_sends_nothing(
    fake: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Redactor, text: str, table: object = None) -> str:
        raise RedactionFailed("detector crashed")

    monkeypatch.setattr(Redactor, "redact", broken)
    with pytest.raises(RedactionFailed):
        drafter().draft(example())
    assert fake.received == []


def test_an_unknown_citation_is_re_asked_once_and_then_kept(fake: ScriptedModel) -> None:
    answers = iter(
        [
            '{"root_causes": [{"condition": "l2", "text": "pool too small", '
            '"evidence_ids": ["l99"]}]}',
            '{"root_causes": [{"condition": "l2", "text": "connection pool sized too small for '
            'the load", "evidence_ids": ["l4"]}]}',
        ]
    )
    fake.reply = replying({"root_causes": lambda _m: next(answers)})
    draft = drafter().draft(example())
    causes = sections(draft, SuggestionSection.ROOT_CAUSE)
    assert [c.content for c in causes] == ["connection pool sized too small for the load"]
    assert causes[0].confidence < 0.45  # less sure after a re-ask
    retry = fake.received[[c.section for c in draft.usage.calls].index("root_causes:retry")]
    assert "cites ids that do not exist: l99" in retry[-1]["content"]
    assert retry[-2]["role"] == "assistant"


def test_a_claim_still_unsupported_after_the_re_ask_is_dropped_and_noted(
    fake: ScriptedModel,
) -> None:
    fake.reply = replying(
        {
            "lessons": lambda _m: (
                '{"went_well": [{"text": "x y", "evidence_ids": []}], "went_wrong": [], '
                '"lucky": []}'
            )
        }
    )
    draft = drafter().draft(example())
    assert sections(draft, SuggestionSection.LESSON) == []
    dropped = [n for n in draft.notes if n.section is SuggestionSection.LESSON]
    assert dropped and "cites no evidence id" in dropped[-1].message


def test_invalid_json_is_re_asked(fake: ScriptedModel) -> None:
    replies = iter(['{"impact": "unterminated', None])

    def impact(messages: list[Message]) -> str:
        first = next(replies)
        return first if first is not None else fake_analyst(messages)

    fake.reply = replying({"impact": impact})
    draft = drafter().draft(example())
    assert sections(draft, SuggestionSection.IMPACT)[0].origin is SuggestionOrigin.MODEL
    assert "impact:retry" in [c.section for c in draft.usage.calls]


def test_a_failing_model_still_gives_a_draft_from_the_rules(fake: ScriptedModel) -> None:
    fake.reply = lambda _m: (_ for _ in ()).throw(RuntimeError("provider down"))
    draft = drafter().draft(example())
    assert draft.degraded
    assert {s.origin for s in draft.suggestions} == {SuggestionOrigin.RULES}
    assert sections(draft, SuggestionSection.SUMMARY)  # from the incident's own fields
    trigger = sections(draft, SuggestionSection.TRIGGER)[0]
    assert trigger.evidence_ids == ["t2"] and trigger.confidence <= 0.3
    failed = [n for n in draft.notes if n.kind is NoteKind.SECTION_FAILED]
    # Every question asked failed (the factor question needs candidates, and there are none
    # without a model here: no failure mode matched the fallback causes).
    assert len(failed) == len(draft.usage.calls) >= 7
    assert all(not c.ok for c in draft.usage.calls)


def _needing_the_model() -> Drafter:
    client = LlmClient(LlmConfig(model="fake/analyst"), Redactor(), sleep=lambda _s: None)
    options = DraftingOptions(concurrency=2, model_required=True)
    return Drafter(client, None, Redactor(), options=options, clock=lambda: NOW)


def test_a_draft_that_needs_the_model_stops_after_the_first_stage_if_nothing_answered(
    fake: ScriptedModel,
) -> None:
    fake.reply = lambda _m: (_ for _ in ()).throw(RuntimeError("provider down"))
    with pytest.raises(ModelUnavailable) as caught:
        _needing_the_model().draft(example())
    assert str(caught.value) == (
        "the model provider failed: no answer from fake/analyst in 4 attempts; last error: "
        "APIConnectionError: provider down. Nothing was drafted; try again later"
    )
    asked = sorted(question_of(m) for m in fake.received)
    assert asked == ["lessons", "lessons", "trigger", "trigger"]  # 1 + max_retries each


def test_a_draft_that_needs_the_model_goes_on_once_the_model_has_answered(
    fake: ScriptedModel,
) -> None:
    def all_but_the_trigger(messages: list[Message]) -> str:
        if question_of(messages) == "trigger":
            raise RuntimeError("provider down")
        return fake_analyst(messages)

    fake.reply = all_but_the_trigger
    draft = _needing_the_model().draft(example())
    assert draft.degraded
    [failed] = [n for n in draft.notes if n.kind is NoteKind.SECTION_FAILED]
    assert failed.section is SuggestionSection.TRIGGER
    assert SuggestionOrigin.MODEL in {s.origin for s in draft.suggestions}


def test_detection_ignores_alerts_from_before_the_impact(fake: ScriptedModel) -> None:
    base = example().model_dump(mode="json")
    early = {**base["alerts"][0], "id": "a0", "at": "2026-01-13T13:00:00Z", "text": "old alert"}
    incident = Incident.model_validate({**base, "alerts": [early, *base["alerts"]]})
    draft = drafter().draft(incident)
    detection = sections(draft, SuggestionSection.DETECTION)[0]
    assert detection.evidence_ids == ["a1"] and "7 min after" in detection.content


def test_partial_drafts_come_before_the_model_and_grow_after_each_answer(
    fake: ScriptedModel,
) -> None:
    """A reviewer can start reading at once: the first partial draft comes before any model
    call (what code found), then one after each answer; they never change the final draft."""
    incident = example()
    calls_at: list[int] = []
    partials: list[Draft] = []

    def keep(draft: Draft) -> None:
        calls_at.append(len(fake.received))
        partials.append(draft)

    final = drafter().draft(incident, draft_id="d-partial", partial=keep)
    plain = drafter().draft(incident, draft_id="d-partial")

    assert calls_at[0] == 0  # before the first model call
    first = {s.section for s in partials[0].suggestions}
    assert first == {
        SuggestionSection.SUMMARY,
        SuggestionSection.IMPACT,
        SuggestionSection.TIMELINE,
        SuggestionSection.DETECTION,
        SuggestionSection.RESOLUTION,
    }
    assert any(n.message.startswith("still drafting: trigger") for n in partials[0].notes)
    # One after each of the eight questions, plus the first; each holds more than the last.
    assert len(partials) == 9
    counts = [len(p.suggestions) for p in partials]
    assert counts == sorted(counts) and counts[-1] > counts[0]
    roots_at = next(i for i, p in enumerate(partials) if sections(p, SuggestionSection.ROOT_CAUSE))
    assert not sections(partials[roots_at - 1], SuggestionSection.ROOT_CAUSE)
    assert not sections(partials[roots_at], SuggestionSection.ACTION_ITEM)
    assert not any(n.message.startswith("still drafting") for n in partials[-1].notes)
    assert not any(n.message.startswith("still drafting") for n in final.notes)
    # Composing partial drafts leaves the real one untouched.
    assert [(s.section, s.content) for s in final.suggestions] == [
        (s.section, s.content) for s in plain.suggestions
    ]
    assert final.notes == plain.notes


def test_a_split_model_chooses_with_one_model_and_writes_with_the_other(
    fake: ScriptedModel,
) -> None:
    writer = ScriptedModel(reply=fake_analyst)
    register_provider("fake2", writer)
    client = LlmClient(
        LlmConfig(model="fake/analyst", writer="fake2/writer", max_retries=0),
        Redactor(),
        sleep=lambda _s: None,
    )
    draft = Drafter(client, None, Redactor(), count=lambda t: len(t.split()), clock=lambda: NOW)
    made = draft.draft(example())
    assert made.model == "fake/analyst+fake2/writer"
    by = {c.section: c.model for c in made.usage.calls if c.ok}
    assert {by[q] for q in ("trigger", "root_causes", "chain")} == {"fake/analyst"}
    assert {by[q] for q in ("summary", "impact", "factors", "actions", "lessons")} == {
        "fake2/writer"
    }
    assert sections(made, SuggestionSection.SUMMARY) and sections(
        made, SuggestionSection.ACTION_ITEM
    )
