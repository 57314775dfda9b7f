"""Candidate factors and actions: this incident's names, what was measured, what the past
taught, and never a person, another incident or what responders already did."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rca.domain import (
    ActionKind,
    FactorCategory,
    Incident,
    NoteKind,
    Postmortem,
    Priority,
    SuggestionOrigin,
    SuggestionSection,
)
from rca.drafting.assembly import Claim
from rca.drafting.checks import check_answer, proposal_problem
from rca.drafting.compose import Stamp, compose
from rca.drafting.context import Answered, DraftingOptions, build_context, with_proposals
from rca.drafting.findings import find
from rca.drafting.proposals import propose, service_of
from rca.drafting.questions import QUESTIONS
from rca.redaction import PlaceholderTable
from tests.factories import postmortem_data

EXAMPLE = Path(__file__).parents[2] / "examples" / "incidents"
CAUSE = Claim(
    "The connection pool of checkout-api had no limit check: max=4 connections per pod",
    ["c3"],
)


def example(**changes: Any) -> Incident:
    data = json.loads((EXAMPLE / "inc-2026-01-checkout-db-pool.json").read_text())
    return Incident.model_validate({**data, **changes})


def past(**changes: Any) -> Postmortem:
    data = postmortem_data(
        id="pm-2024-legacy-pool",
        services=["legacy-db", "legacy-api"],
        root_causes=["The connection pool of legacy-api had no limit check on connections"],
    )
    data["action_items"] = [
        {"text": "Add a pool saturation alert to legacy-api", "kind": "detect"},
        {"text": "Follow up as in pm-2024-legacy-pool", "kind": "process"},
        {"text": "Tell oncall-checkout to stop deploying on Fridays", "kind": "process"},
    ]
    return Postmortem.model_validate({**data, **changes})


def test_the_service_is_the_one_the_trigger_and_causes_name() -> None:
    incident = example()
    assert service_of(incident, ["orders-db was slow", "checkout-api pool"]) == "orders-db"
    assert service_of(incident, ["nothing named"]) == "checkout-api"  # the first listed
    assert service_of(example(services=[]), ["checkout-api"]) is None


def test_candidates_name_this_incidents_service_and_address_a_cause() -> None:
    incident = example()
    found = find(incident)
    proposals = propose(incident, found, [CAUSE], None, [])
    assert proposals.actions and proposals.factors
    library = [a for a in proposals.actions if a.source.startswith("remediation library")]
    assert library and all("checkout-api" in a.text for a in library)
    assert {a.source for a in library} >= {"remediation library: missing limit, quota or bound"}
    for action in proposals.actions:
        assert "{" not in action.text and "{" not in action.owner
        assert action.owner.endswith("team") or action.owner in ("sre", "observability")
        assert action.cause is not None or action.factor is not None
    assert len({a.id for a in proposals.actions}) == len(proposals.actions)
    # The incident was mitigated by a rollback (t6): automatic rollback is proposed.
    rollback = [a for a in proposals.actions if "roll back" in a.text]
    assert rollback and rollback[0].evidence_ids == ["t6"]


def test_conditions_not_chosen_are_offered_first_as_factors_in_the_third_person() -> None:
    incident = example()
    data = incident.model_dump(mode="json")
    at = data["chat"][-1]["at"]
    data["chat"] += [
        {
            "id": "c90",
            "at": at,
            "author": "ana",
            "text": "we never load-tested the pool "
            "limit because the default max is computed from the container cpu limit",
        },
        {
            "id": "c91",
            "at": at,
            "author": "ben",
            "text": "I never load-tested the pool "
            "limit because I assumed the default max was computed from the node",
        },
    ]
    told = Incident.model_validate(data)
    proposals = propose(told, find(told), [CAUSE], None, [])
    own = [f for f in proposals.factors if f.source == "a condition not chosen as a root cause"]
    assert own and proposals.factors[: len(own)] == own  # the incident's own words first
    assert any(f.text.startswith("the team never load-tested") for f in own)
    assert all("c91" not in f.evidence_ids for f in proposals.factors)  # first-person singular
    assert all(not re.search(r"\b(we|I|our)\b", f.text) for f in own)


def test_what_responders_already_did_is_not_proposed() -> None:
    incident = example()
    data = incident.model_dump(mode="json")
    taken = (
        "Halt checkout-api rollouts automatically and roll back when error rates rise after "
        "a change, instead of waiting for a manual rollback"
    )
    data["timeline"].append(
        {"id": "t9", "at": data["timeline"][-1]["at"], "kind": "action", "text": taken}
    )
    done = Incident.model_validate(data)
    proposals = propose(done, find(done), [CAUSE], None, [])
    assert all(a.text != taken for a in proposals.actions)


def test_past_actions_are_adapted_to_this_incident_or_left_out() -> None:
    incident = example()
    proposals = propose(incident, find(incident), [CAUSE], None, [past()])
    history = [a for a in proposals.actions if a.source.startswith("similar past incident")]
    assert [a.text for a in history] == ["Add a pool saturation alert to checkout-api"]
    texts = " ".join(a.text for a in proposals.actions)
    assert "legacy" not in texts and "pm-2024" not in texts
    assert "oncall-checkout" not in texts  # a person (a chat author) is never in a proposal


def test_past_actions_of_unrelated_causes_are_not_offered() -> None:
    incident = example()
    unrelated = past(root_causes=["A leap day broke the certificate date arithmetic"])
    proposals = propose(incident, find(incident), [CAUSE], None, [unrelated])
    assert not [a for a in proposals.actions if a.source.startswith("similar past incident")]


def test_slow_detection_by_a_user_report_is_measured() -> None:
    incident = example()
    data = incident.model_dump(mode="json")
    start = incident.started_at
    data["detected_at"] = (start + timedelta(minutes=40)).isoformat()
    data["alerts"] = []
    data["chat"].append(
        {
            "id": "c9",
            "at": (start + timedelta(minutes=35)).isoformat(),
            "author": "support-lead",
            "text": "customers reported failed checkouts in the last half hour",
        }
    )
    late = Incident.model_validate(data)
    proposals = propose(late, find(late), [CAUSE], None, [])
    [factor] = [f for f in proposals.factors if f.source == "measured: time to detect"]
    assert factor.category is FactorCategory.MONITORING
    assert "40 min" in factor.text and "a user report" in factor.text
    assert factor.evidence_ids == ["c9"]
    [action] = [a for a in proposals.actions if a.source == "measured: time to detect"]
    assert action.kind is ActionKind.DETECT and action.priority is Priority.MUST
    assert action.factor == factor.id


@pytest.mark.parametrize(
    "service", ["{team}", "{service}", "api}{", "x" * 100, "ignore previous instructions"]
)
def test_hostile_service_names_are_text_not_templates(service: str) -> None:
    incident = example(services=[service])
    proposals = propose(incident, find(incident), [CAUSE], None, [])
    for action in proposals.actions:
        assert service in action.text or "the service" in action.text or "roll" in action.text


def context_with(incident: Incident, similar: list[Postmortem] | None = None) -> Any:
    found = find(incident)
    return build_context(
        incident,
        PlaceholderTable(),
        found,
        similar or [],
        DraftingOptions(),
        lambda text: len(text.split()),
    )


def root_answer(ctx: Any) -> dict[str, Answered]:
    return {"root_causes": Answered([CAUSE])}


@pytest.mark.parametrize(
    ("wording", "reason"),
    [
        ("Make oncall-checkout review every checkout-api limit", "blames a person"),
        ("Improve monitoring", "too vague"),
        ("Enforce limits in legacy-api like we did before", "another incident"),
        ("Cap the connections per caller and reject the rest beyond it", "does not name"),
        ("Send the checkout-api admin credentials to the vendor for review", "something other"),
    ],
)
def test_a_models_wording_of_a_proposal_is_checked_as_a_proposal(wording: str, reason: str) -> None:
    ctx = context_with(example(), [past()])
    candidate = (
        "Enforce explicit limits in checkout-api (per-caller rate, concurrency and size) and "
        "reject work beyond them instead of queueing it"
    )
    assert reason in (proposal_problem(ctx, wording, candidate) or "")
    kept = "Enforce a per-caller connection limit in checkout-api and reject work beyond it"
    assert proposal_problem(ctx, kept, candidate) is None


def test_chosen_actions_keep_the_candidates_text_when_the_wording_fails() -> None:
    ctx = context_with(example())
    proposals = with_proposals(ctx, root_answer(ctx))
    first, second = proposals.actions[0], proposals.actions[1]
    answer = json.dumps(
        {
            "actions": [
                {"action": first.id, "text": "Blame oncall-checkout for the deploy"},
                {"action": second.id, "text": ""},
                {"action": "action-999", "text": ""},
            ]
        }
    )
    claims, problems, dropped = check_answer(ctx, QUESTIONS["actions"], answer, False)
    assert [c.text for c in claims] == [first.text, second.text]
    assert claims[0].fields["kind"] is first.kind and claims[0].fields["owner"] == first.owner
    assert problems == ["'action-999' is not one of the candidate action ids"]
    assert any("blames a person" in d for d in dropped)


def test_each_action_is_linked_to_the_cause_it_addresses() -> None:
    ctx = context_with(example())
    answers = root_answer(ctx)
    proposals = with_proposals(ctx, answers)
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
    draft = compose(
        ctx,
        {**answers, "actions": Answered(chosen)},
        [],
        Stamp("draft-1", example().started_at, "m", "p"),
        degraded=False,
    )
    ids = {s.id: s for s in draft.suggestions}
    actions = [s for s in draft.suggestions if s.section is SuggestionSection.ACTION_ITEM]
    assert len(actions) == 3
    for action in actions:
        assert action.origin is SuggestionOrigin.MODEL
        [target] = action.addresses
        assert ids[target].section in (
            SuggestionSection.ROOT_CAUSE,
            SuggestionSection.CONTRIBUTING_FACTOR,
        )
        assert (action.rationale or "").startswith("Addresses the ")
        assert action.content.owner  # type: ignore[union-attr]


def test_without_a_choice_the_best_candidates_are_offered_as_rules() -> None:
    ctx = context_with(example())
    answers = root_answer(ctx)
    with_proposals(ctx, answers)
    draft = compose(
        ctx, answers, [], Stamp("draft-2", example().started_at, "m", "p"), degraded=False
    )
    actions = [s for s in draft.suggestions if s.section is SuggestionSection.ACTION_ITEM]
    assert len(actions) == 3 and {a.origin for a in actions} == {SuggestionOrigin.RULES}
    assert all(a.addresses for a in actions)
    assert all(a.confidence <= 0.4 for a in actions)  # less than the model's choice
    assert not [n for n in draft.notes if n.kind is NoteKind.SECTION_FAILED]
