"""The drafting pipeline with history: retrieval, degraded mode and follow-ups."""

from __future__ import annotations

import json

from rca.domain import ActionStatus, NoteKind, SuggestionOrigin, SuggestionSection
from rca.drafting import Drafter
from rca.llm import ScriptedModel
from rca.ports import Retrieved
from rca.redaction import Redactor
from tests.drafting._pipeline_helpers import (
    NOW,
    FixedHistory,
    drafter,
    example,
    past_postmortem,
    replying,
    sections,
)


def test_open_actions_of_similar_incidents_are_reported(fake: ScriptedModel) -> None:
    history = FixedHistory(Retrieved([past_postmortem()]))
    draft = drafter(history).draft(example())
    assert draft.similar_postmortem_ids == ["pm-2025-pool"]
    assert not any(n.kind is NoteKind.DEGRADED for n in draft.notes)
    assert [f.action.status for f in draft.follow_ups] == [ActionStatus.OPEN]
    follow = draft.follow_ups[0]
    assert follow.postmortem_id == "pm-2025-pool" and follow.related_suggestion_ids
    lesson = [s for s in draft.suggestions if s.origin is SuggestionOrigin.HISTORY]
    assert lesson and "pm-2025-pool" in lesson[0].content.text  # type: ignore[union-attr]
    assert lesson[0].evidence_ids == ["pm-2025-pool"]
    # Search ran on the redacted incident.
    assert history.asked and history.asked[0].id == "inc-2026-01-checkout-db-pool"


def test_a_claim_copied_from_a_past_incident_without_support_here_is_dropped(
    fake: ScriptedModel,
) -> None:
    words = (
        "checkout-api dashboards lacked saturation panels for the load balancer health check "
        "queue depth"
    )
    copied = json.dumps({"factors": [{"factor": "factor-1", "text": words}]})
    fake.reply = replying({"factors": lambda _m: copied})
    draft = drafter(FixedHistory(Retrieved([past_postmortem()]))).draft(example())
    factors = sections(draft, SuggestionSection.CONTRIBUTING_FACTOR)
    assert factors and all(words not in f.content.text for f in factors)
    reasons = [n.message for n in draft.notes if n.section is SuggestionSection.CONTRIBUTING_FACTOR]
    assert any("restates pm-2025-pool" in r for r in reasons)


def test_degraded_retrieval_is_marked(fake: ScriptedModel) -> None:
    history = FixedHistory(
        Retrieved([past_postmortem()], degraded=True, notes=["vector index unavailable"])
    )
    draft = drafter(history).draft(example())
    assert draft.degraded
    assert any("vector index unavailable" in n.message for n in draft.notes)


def test_without_a_model_the_baseline_drafts() -> None:
    history = FixedHistory(Retrieved([past_postmortem()]))
    draft = Drafter(None, history, Redactor(), clock=lambda: NOW).draft(example())
    assert draft.model == "baseline"
    causes = sections(draft, SuggestionSection.ROOT_CAUSE)
    assert causes and causes[0].origin is SuggestionOrigin.HISTORY
    assert set(draft.usage.stages_s) == {"redaction", "retrieval"}
