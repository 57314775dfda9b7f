"""The deterministic analysis on an example incident, checked by hand against its evidence."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from rca.domain import Incident
from rca.drafting.candidates import candidate_conditions, candidate_steps, disputed, ranked
from rca.drafting.findings import candidate_triggers, find, first_errors, merged_timeline
from rca.formats.importer import load_file

EXAMPLES = Path(__file__).parents[2] / "examples"


def _incident() -> Incident:
    [doc] = load_file(EXAMPLES / "incidents" / "inc-2026-01-checkout-db-pool.json", 5 << 20)
    assert isinstance(doc, Incident)
    return doc


def test_candidate_triggers_are_the_changes_before_the_impact_latest_first() -> None:
    found = candidate_triggers(_incident())
    # Impact began 14:04. t2 (deploy v7.12.0, 14:02) is closest; t1 (the autovacuum config
    # change, 13:40) is within two hours. l1, the new version's start-up log, is not a change.
    assert [c.id for c in found] == ["t2", "t1"]
    assert found[0].before_impact == timedelta(minutes=2)
    assert candidate_triggers(_incident(), window=timedelta(minutes=10))[-1].id == "t2"


def test_first_errors_group_repeats() -> None:
    errors = first_errors(_incident())
    assert [e.first_id for e in errors] == ["l4"]
    assert errors[0].count == 1 and "timed out" in errors[0].signature


def test_merged_timeline_marks_key_moments_in_order() -> None:
    incident = _incident()
    moments = merged_timeline(incident, candidate_triggers(incident), first_errors(incident))
    assert [m.at for m in moments] == sorted(m.at for m in moments)
    keys = {m.key: m for m in moments if m.key}
    assert keys["impact start"].id is None and keys["resolved"].text == "resolved"
    assert keys["first alert"].id == "a1"
    assert keys["first occurrence of an error"].id == "l4"
    marked_changes = {m.id for m in moments if m.key == "change before impact"}
    assert marked_changes == {"t1", "t2"}
    assert len([m for m in moments if m.id]) == len(_incident().evidence_ids())


def test_candidate_conditions_rank_findings_about_the_system_and_keep_time_order() -> None:
    incident = _incident()
    found = candidate_conditions(incident, exclude=["t1", "t2", "c4"])
    ids = [c.id for c in found]
    # Alerts are symptoms and status updates say nothing of causes; excluded ids stay out.
    assert not {"a1", "a2", "a3", "t8", "t1", "t2", "c4"} & set(ids)
    assert [c.at for c in found] == sorted(c.at for c in found)
    by_id = {c.id: c for c in candidate_conditions(incident, limit=50)}
    # The pool setting (l2: "min=1 max=4 (auto: cpu_limit=2)") outranks the checkpoint log
    # line, and the responder's reasoning (c3: "no lock waits, ... connections went down")
    # ranks first of all.
    assert by_id["l2"].score > by_id["l6"].score
    assert max(found, key=lambda c: c.score).id == "c3"
    top = candidate_conditions(incident, limit=2, exclude=["t1", "t2", "c4"])
    assert len(top) == 2 and "c3" in [c.id for c in top]


def test_questions_guesses_and_one_word_messages_rank_last() -> None:
    base = _incident().model_dump(mode="json")
    at = base["chat"][0]["at"]
    chat = [
        {"id": "q1", "at": at, "text": "could the DNS change from this morning be involved here?"},
        {
            "id": "f1",
            "at": at,
            "text": "the retry loop has no backoff and no limit, so clients hammer it",
        },
        {"id": "s1", "at": at, "text": "looking"},
    ]
    incident = Incident.model_validate({**base, "chat": chat})
    scores = {c.id: c.score for c in candidate_conditions(incident, limit=50)}
    assert "s1" not in scores  # too short to say anything
    assert scores["f1"] > scores["q1"]
    assert scores["q1"] == min(scores.values())


def test_candidate_steps_are_errors_alerts_and_findings_up_to_mitigation() -> None:
    incident = _incident()
    errors = [e.first_id for e in first_errors(incident)]
    found = candidate_steps(incident, errors, limit=50, exclude=["t1", "t2"])
    ids = [c.id for c in found]
    assert [c.at for c in found] == sorted(c.at for c in found)
    # The first (only) error, the alerts and the responders' findings are in; changes,
    # actions, status updates and anything after mitigation (t7, c6) are not.
    assert {"l4", "a1", "a2", "c3", "t4"} <= set(ids)
    assert not {"t1", "t2", "t5", "t6", "t7", "t8", "c6"} & set(ids)
    assert "c2" not in ids  # a question ("can someone check?") is not a finding
    by_id = {c.id: c for c in found}
    assert by_id["l4"].score > by_id["a1"].score  # a first error says more than an alert
    assert len(candidate_steps(incident, errors, limit=3)) == 3


def test_find_computes_every_finding_once_from_the_same_candidates() -> None:
    """The findings stage: one value holding what the later stages read, consistent with the
    functions that compute each part."""
    incident = _incident()
    found = find(incident)
    triggers = candidate_triggers(incident)
    assert found.triggers == triggers
    assert found.errors == first_errors(incident)
    assert found.timeline == merged_timeline(incident, triggers, found.errors)
    # Triggers and flagged evidence are never offered as conditions or chain steps.
    excluded = {c.id for c in triggers} | set(found.flagged)
    assert excluded
    assert not excluded & {c.id for c in [*found.conditions, *found.steps]}
    assert found.conditions and found.steps
    summary, cited = found.summary
    assert incident.title in summary
    assert cited == [min(incident.alerts, key=lambda a: (a.at, a.id)).id]
    assert found.impact is not None
    assert found.impact[1] == [a.id for a in sorted(incident.alerts, key=lambda a: (a.at, a.id))]


def _with(**evidence: list[dict[str, object]]) -> Incident:
    data = _incident().model_dump(mode="json")
    for key, items in evidence.items():
        data[key] = [*data[key], *items]
    return Incident.model_validate(data)


def test_operator_actions_and_commands_before_the_impact_are_candidate_triggers() -> None:
    start = _incident().started_at
    incident = _with(
        timeline=[
            {
                "id": "t90",
                "at": (start - timedelta(minutes=20)).isoformat(),
                "kind": "action",
                "text": "Ran the capacity removal playbook against the billing fleet",
            },
            {
                "id": "t91",
                "at": (start + timedelta(minutes=3)).isoformat(),
                "kind": "action",
                "text": "Restarted the checkout pods to mitigate",
            },
        ],
        logs=[
            {
                "id": "l90",
                "at": (start - timedelta(minutes=10)).isoformat(),
                "text": "$ kubectl drain node-17 --force --delete-emptydir-data",
            },
            {
                "id": "l91",
                "at": (start - timedelta(minutes=9)).isoformat(),
                "text": "ERROR kubectl delete failed: forbidden",
            },
        ],
    )
    ids = [c.id for c in candidate_triggers(incident)]
    assert "t90" in ids and "l90" in ids
    assert "t91" not in ids  # after the impact began: a mitigation, not a trigger
    assert "l91" not in ids  # an error, not a change


def test_a_first_person_account_ranks_below_the_same_finding_said_of_the_system() -> None:
    start = _incident().started_at
    said = "the deploy script accepted a list of IDs without checking their type, max=4"
    incident = _with(
        chat=[
            {"id": "c90", "at": (start + timedelta(minutes=5)).isoformat(), "text": said},
            {
                "id": "c91",
                "at": (start + timedelta(minutes=6)).isoformat(),
                "text": "I ran it and " + said,
            },
        ]
    )
    scores = {c.id: c.score for c in candidate_conditions(incident, limit=50)}
    assert scores["c91"] < scores["c90"] - 1.5


def test_mitigation_steps_plans_and_decisions_rank_below_findings() -> None:
    """What responders did or will do about the incident is not what caused it."""
    base = _incident().model_dump(mode="json")
    at = base["chat"][0]["at"]
    finding = "the retry loop has no backoff and no limit, so every client hammers the shared db"
    plans = [
        "let's stop the bleeding: pause the batch jobs so we aren't hammering the shared db",
        "decision: integrity first, we stay degraded and restore from the nightly backups",
        "rolling back the release now, the limit check can wait until tomorrow",
        "we should build a fresh cluster and move over rather than keep running on this one",
        "cordoning the new pool for now, we can figure out the missing label later",
        "we don't understand why yet, the default config looks the same on every node",
    ]
    chat = [{"id": "f1", "at": at, "text": finding}] + [
        {"id": f"p{n}", "at": at, "text": text} for n, text in enumerate(plans)
    ]
    incident = Incident.model_validate({**base, "chat": chat})
    scores = {c.id: c.score for c in candidate_conditions(incident, limit=50)}
    assert all(scores[f"p{n}"] < scores["f1"] - 2 for n in range(len(plans))), scores


@pytest.mark.parametrize(
    ("done", "said"),
    [
        (
            "Rolled back the two changes pushed this morning; no limit on the shared pool",
            "Looked at the two changes pushed this morning; no limit on the shared pool",
        ),
        (
            "non-essential usage disabled, services scaled down, the default checks every 10 min",
            "non-essential usage measured, services counted, the default checks every 10 min",
        ),
        (
            "fix: drop samples <= 0 so the average recovers, the default clock is not monotonic",
            "note: drop samples <= 0 so the average recovers, the default clock is not monotonic",
        ),
        (
            "disabling that config and re-pushing the previous state, the default was missing",
            "reading that config and comparing the previous state, the default was missing",
        ),
    ],
)
def test_what_responders_did_ranks_below_the_same_words_as_a_finding(done: str, said: str) -> None:
    base = _incident().model_dump(mode="json")
    at = base["chat"][0]["at"]
    chat = [{"id": "d", "at": at, "text": done}, {"id": "s", "at": at, "text": said}]
    incident = Incident.model_validate({**base, "chat": chat})
    scores = {c.id: c.score for c in candidate_conditions(incident, limit=50)}
    assert scores["d"] < scores["s"] - 1.5, scores


def _said(*lines: tuple[str, str]) -> Incident:
    base = _incident().model_dump(mode="json")
    start = _incident().started_at
    chat = [
        {"id": f"q{n}", "at": (start + timedelta(minutes=n)).isoformat(), "author": who, "text": t}
        for n, (who, t) in enumerate(lines, start=1)
    ]
    return Incident.model_validate({**base, "chat": chat, "timeline": []})


def test_a_theory_taken_back_or_cleared_later_is_disputed_and_ranks_low() -> None:
    incident = _said(
        ("kofi", "It's the CDN: the edge purge means every preview misses the cache"),
        ("mei", "is the database ok? replica lag alert fired at the same time"),
        ("mei", "database is fine. the thumbnail disk is full because nothing evicts old files"),
        ("kofi", "Retracting the CDN theory: the edge hit ratio never dropped"),
    )
    assert disputed(incident) == {"q1": "q4", "q2": "q3"}
    ranked_ids = [c.id for c in ranked(candidate_conditions(incident))]
    assert ranked_ids.index("q3") < ranked_ids.index("q1")
    assert "q4" not in ranked_ids[:1]  # the taking back is no cause either


def test_agreement_and_unrelated_all_clears_are_not_disputes() -> None:
    incident = _said(
        ("kofi", "the thumbnail disk is full because nothing evicts old files"),
        ("mei", "agreed, and the disk alert threshold is 95% so it paged late"),
        ("mei", "uploads look fine again after clearing the cache directory"),
    )
    assert disputed(incident) == {}
