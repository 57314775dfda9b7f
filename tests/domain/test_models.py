"""The domain model follows the interchange format and refuses what it must."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from rca.domain import (
    ActionItem,
    ActionKind,
    ActionStatus,
    CausalNode,
    Draft,
    Incident,
    Postmortem,
    Priority,
    Review,
    ReviewDecision,
    ReviewStatus,
    Suggestion,
    SuggestionSection,
)
from tests.factories import incident_data, postmortem_data


def _errors(model: type[Incident] | type[Postmortem], data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
        for e in info.value.errors(include_url=False)
    ]


def test_valid_documents_round_trip_through_json() -> None:
    pm = Postmortem.model_validate(postmortem_data())
    assert Postmortem.model_validate_json(pm.model_dump_json()) == pm
    incident = Incident.model_validate(incident_data())
    assert Incident.model_validate_json(incident.model_dump_json()) == incident


def test_only_id_title_summary_are_required_for_a_postmortem() -> None:
    pm = Postmortem.model_validate({"id": "pm-1", "title": "T", "summary": "S"})
    assert pm.root_causes == [] and pm.impact is None and pm.lessons.is_empty()
    assert _errors(Postmortem, {"id": "pm-1"}) == [
        "title: Field required",
        "summary: Field required",
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"bogus": 1}, "bogus: Extra inputs are not permitted"),
        ({"severity": "P1"}, "severity: Input should be 'SEV1', 'SEV2', 'SEV3', 'SEV4' or 'SEV5'"),
        ({"summary": "   "}, "summary: Value error, must not be empty"),
        ({"id": "has space"}, "id: String should match pattern"),
    ],
)
def test_postmortem_refusals(changes: dict[str, Any], expected: str) -> None:
    errors = _errors(Postmortem, postmortem_data(**changes))
    assert len(errors) == 1 and errors[0].startswith(expected)


def test_unknown_keys_are_refused_in_nested_objects() -> None:
    data = postmortem_data()
    data["action_items"][0]["due"] = "2025-05-01"
    assert _errors(Postmortem, data) == ["action_items.0.due: Extra inputs are not permitted"]


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        ([{"id": "a", "kind": "trigger", "text": "x", "leads_to": ["zz"]}], "missing node 'zz'"),
        ([{"id": "a", "kind": "trigger", "text": "x", "leads_to": ["a"]}], "leads to itself"),
        (
            [
                {"id": "a", "kind": "trigger", "text": "x", "leads_to": ["b"]},
                {"id": "b", "kind": "cause", "text": "y", "leads_to": ["c"]},
                {"id": "c", "kind": "impact", "text": "z", "leads_to": ["a"]},
            ],
            "cycle",
        ),
        (
            [
                {"id": "a", "kind": "trigger", "text": "x"},
                {"id": "a", "kind": "impact", "text": "y"},
            ],
            "duplicate causal chain node id 'a'",
        ),
        ([{"id": "a", "kind": "blame", "text": "x"}], "Input should be 'root_cause'"),
    ],
)
def test_causal_chain_must_be_a_dag_over_known_nodes(
    chain: list[dict[str, Any]], message: str
) -> None:
    errors = _errors(Postmortem, postmortem_data(causal_chain=chain))
    assert len(errors) == 1 and message in errors[0]


def test_a_diamond_is_a_valid_dag() -> None:
    chain = [
        {"id": "r", "kind": "root_cause", "text": "r", "leads_to": ["a", "b"]},
        {"id": "a", "kind": "cause", "text": "a", "leads_to": ["i"]},
        {"id": "b", "kind": "cause", "text": "b", "leads_to": ["i"]},
        {"id": "i", "kind": "impact", "text": "i"},
    ]
    assert len(Postmortem.model_validate(postmortem_data(causal_chain=chain)).causal_chain) == 4


def test_list_items_fold_line_breaks_and_free_text_keeps_paragraphs() -> None:
    pm = Postmortem.model_validate(
        postmortem_data(root_causes=["  two\r\nlines  "], summary="para one\r\n\r\npara two\n")
    )
    assert pm.root_causes == ["two lines"]
    assert pm.summary == "para one\n\npara two"


def test_action_item_defaults() -> None:
    item = ActionItem.model_validate({"text": "Add an alert", "kind": "detect"})
    assert (item.priority, item.status, item.owner) == (Priority.SHOULD, ActionStatus.OPEN, None)
    assert item.kind is ActionKind.DETECT


def test_incident_assigns_missing_ids() -> None:
    data = incident_data(id=None)
    del data["id"]
    data["alerts"].append({"at": "2025-04-09T08:37:00Z", "text": "second alert"})
    data["logs"].insert(0, {"at": "2025-04-09T08:01:00Z", "text": "first log"})
    data["chat"].append({"id": "", "at": "2025-04-09T08:41:00Z", "text": "no id"})
    incident = Incident.model_validate(data)
    assert incident.id.startswith("inc-")
    assert [a.id for a in incident.alerts] == ["a1", "alert-2"]
    assert [line.id for line in incident.logs] == ["log-1", "l1"]
    assert [m.id for m in incident.chat] == ["c1", "chat-2"]


def test_assigned_ids_never_collide_with_given_ones() -> None:
    data = incident_data(
        alerts=[
            {"at": "2025-04-09T08:36:00Z", "text": "x"},
            {"id": "alert-1", "at": "2025-04-09T08:36:00Z", "text": "y"},
        ]
    )
    assert [a.id for a in Incident.model_validate(data).alerts] == ["alert-2", "alert-1"]


def test_incident_refusals() -> None:
    naive = _errors(Incident, incident_data(started_at="2025-04-09T08:01:00"))
    assert naive == ["started_at: Input should have timezone info"]
    data = incident_data()
    data["chat"][0]["id"] = "a1"
    assert _errors(Incident, data) == [": Value error, duplicate evidence id 'a1'"]
    early = _errors(Incident, incident_data(detected_at="2025-04-09T07:00:00Z"))
    assert early == [": Value error, detected_at is before started_at"]
    bad_kind = incident_data()
    bad_kind["timeline"][0]["kind"] = "rollback"
    assert _errors(Incident, bad_kind)[0].startswith("timeline.0.kind: Input should be 'deploy'")
    # Found by schemathesis: an id of the wrong type is a validation error, not a crash.
    for wrong in ([], {}, 7, False):
        odd = incident_data()
        odd["alerts"][0]["id"] = wrong
        assert _errors(Incident, odd)[0].startswith("alerts.0.id: ")


def test_durations_are_derived_not_stored() -> None:
    incident = Incident.model_validate(incident_data())
    assert incident.time_to_detect == timedelta(minutes=35)
    assert incident.time_to_mitigate == timedelta(minutes=54)
    assert incident.time_to_resolve == timedelta(minutes=69)
    assert "time_to_detect" not in incident.model_dump()
    partial = Incident.model_validate(incident_data(detected_at=None, resolved_at=None))
    assert partial.time_to_detect is None and partial.time_to_resolve is None


def test_models_are_frozen() -> None:
    pm = Postmortem.model_validate(postmortem_data())
    with pytest.raises(ValidationError):
        pm.title = "changed"  # type: ignore[misc]


def test_suggestion_content_must_fit_its_section() -> None:
    node = CausalNode(id="n1", kind="trigger", text="deploy")  # type: ignore[arg-type]
    ok = Suggestion(
        id="s1",
        section=SuggestionSection.CAUSAL_NODE,
        content=node,
        evidence_ids=["t1"],
        confidence=0.7,
    )
    assert ok.status is ReviewStatus.PENDING and ok.version == 1
    with pytest.raises(ValidationError, match="needs CausalNode content, not str"):
        Suggestion(id="s2", section=SuggestionSection.CAUSAL_NODE, content="deploy", confidence=0.5)
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        Suggestion(id="s3", section=SuggestionSection.SUMMARY, content="x", confidence=1.5)
    with pytest.raises(ValidationError, match="duplicate suggestion id"):
        Draft(
            id="d1",
            incident_id="inc-1",
            created_at=datetime.now(UTC),
            model="local/qwen",
            prompt_version="draft-v1",
            suggestions=[ok, ok],
        )


def test_review_edit_needs_content_and_others_refuse_it() -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValidationError, match="an edit needs edited_content"):
        Review(suggestion_id="s1", reviewer="sre-lead", decision=ReviewDecision.EDIT, at=now)
    with pytest.raises(ValidationError, match="a reject carries no edited_content"):
        Review(
            suggestion_id="s1",
            reviewer="sre-lead",
            decision=ReviewDecision.REJECT,
            edited_content="x",
            at=now,
        )
    with pytest.raises(ValidationError, match="timezone"):
        Review(
            suggestion_id="s1",
            reviewer="sre-lead",
            decision=ReviewDecision.ACCEPT,
            at=datetime(2025, 1, 1),
        )
