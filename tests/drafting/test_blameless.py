"""The blameless-language check flags blame and hindsight, and leaves systemic wording alone."""

from __future__ import annotations

from itertools import pairwise

import pytest

from rca.drafting.blameless import as_stated, check_blameless


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Root cause: human error during the failover.", "human error"),
        ("An operator mistake deleted the volume.", "operator mistake"),
        ("The engineer should have checked the dashboard first.", "should have"),
        ("A careless config push took down the edge.", "careless"),
        ("The on-call engineer ignored the page for 20 minutes.", "the on-call engineer ignored"),
        ("Someone forgot to renew the certificate.", "Someone forgot"),
        ("It was his mistake to skip the canary.", "his mistake"),
        ("The deploy team is to blame.", "to blame"),
        ("I meant the list of app IDs, not site IDs.", "I"),
        ("ran my cleanup script against prod", "my"),
    ],
)
def test_blame_is_flagged_with_a_suggestion(text: str, phrase: str) -> None:
    flags = check_blameless(text)
    assert [f.phrase.lower() for f in flags] == [phrase.lower()]
    assert flags[0].reason and flags[0].suggestion
    assert text[flags[0].start : flags[0].end] == flags[0].phrase


def test_known_people_named_as_causes() -> None:
    people = ["Dana Whitfield", "Dana", "sam.k"]
    text = (
        "Dana forgot to update the allow-list. The outage was caused by sam.k. "
        "Dana rolled back the change at 14:20."
    )
    flags = check_blameless(text, people)
    assert [f.phrase for f in flags] == ["Dana forgot", "caused by sam.k"]
    assert all("names a person" in f.reason for f in flags)


@pytest.mark.parametrize(
    "text",
    [
        "The pod failed to start because the image pull secret had expired.",
        "The deploy tool accepted a route config that no validator checked.",
        "The runbook did not include a step to verify DNS after the change.",
        "Alerting missed the slow error-rate increase: the threshold was 5% over 10 minutes.",
        "Dana rolled back the change at 14:20 and traffic recovered.",
        "Error rate rose to 40%; the retry budget was exhausted.",
    ],
)
def test_systemic_wording_is_not_flagged(text: str) -> None:
    assert check_blameless(text, people=["Dana"]) == []


def test_overlapping_matches_are_reported_once() -> None:
    flags = check_blameless("He carelessly forgot the step; human error.", people=["He"])
    phrases = [f.phrase for f in flags]
    assert phrases.count("human error") == 1
    assert len({(f.start, f.end) for f in flags}) == len(flags)
    assert all(a.end <= b.start for a, b in pairwise(flags))


@pytest.mark.parametrize(
    "text",
    [
        "The pool size, i.e. max=4, came from the CPU limit.",
        "MySQL replicas lagged behind the primary.",
        "my-service and I-95 are names, not people speaking.",
        "Region me-central-1 was unaffected.",
    ],
)
def test_first_person_is_only_a_responder_speaking(text: str) -> None:
    assert check_blameless(text) == []


@pytest.mark.parametrize(
    ("said", "stated"),
    [
        ("we compute rtt as now minus start", "the team computes rtt as now minus start"),
        ("the list we were given holds site IDs", "the list the team was given holds site IDs"),
        ("We're not sure the snapshot is ours", "The team is not sure the snapshot is the team's"),
        ("we haven't restarted index in years", "the team hasn't restarted index in years"),
        ("we only pushed new tags to quay", "the team only pushed new tags to quay"),
        (
            "we need to page on it; we try again",
            "the team needs to page on it; the team tries again",
        ),
        ("we ack only after the job is done", "the team acks only after the job is done"),
        ("we never load-tested the pool", "the team never load-tested the pool"),
        ("we double-check each push", "the team double-checks each push"),
        ("they see us presenting a certificate", "they see the team presenting a certificate"),
        ("the per-rule limit should have caught this", "the per-rule limit had not caught this"),
        ("the job shouldn't have run on db1", "the job had run on db1"),
        ("nothing should have let it grow", "nothing should have let it grow"),
        (
            "Region me-central-1 and my-service are names",
            "Region me-central-1 and my-service are names",
        ),
    ],
)
def test_a_quoted_line_is_stated_in_the_third_person_without_hindsight(
    said: str, stated: str
) -> None:
    assert as_stated(said) == stated
    assert check_blameless(as_stated(said)) == [] or "nothing" in said  # left to the flag
