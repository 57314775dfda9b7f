"""Support checks on single claims: what counts as evidence for what the model wrote."""

from __future__ import annotations

from rca.drafting.validation import Sources

TEXTS = {
    "e1": "checkout dashboards were slow to load during the incident",
    "e2": "db pool initialised min=1 max=4 (auto: cpu_limit=2)",
    "pm-1": "Checkout dashboards lacked saturation panels for queue depth",
}


def sources() -> Sources:
    return Sources(TEXTS, suspicious=[], borrowable=["pm-1"])


def test_a_claim_its_evidence_bears_out_passes() -> None:
    assert sources().check("the pool max of 4 came from the cpu limit", ["e2"]).ok


def test_a_claim_closer_to_a_past_incident_than_to_its_evidence_is_a_copy() -> None:
    claim = "Checkout dashboards lacked saturation panels for queue depth"
    # e1 shares two of its seven content words (above the support floor), pm-1 all of them.
    verdict = sources().check(claim, ["e1"])
    assert verdict.drop is not None and "restates pm-1" in verdict.drop
    # Citing the past incident itself does not help when support must come from this incident.
    cited = sources().check(claim, ["e1", "pm-1"], support_from={"e1", "e2"})
    assert cited.drop is not None and "restates pm-1" in cited.drop


def test_support_from_ignores_past_incidents() -> None:
    only_past = sources().check("saturation panels", ["pm-1"], support_from={"e1", "e2"})
    assert only_past.drop is not None and "only past incidents" in only_past.drop
    assert sources().check("saturation panels", ["pm-1"]).ok  # allowed where history may speak


def test_unknown_and_missing_citations_are_worth_a_re_ask() -> None:
    assert sources().check("pool", ["nope"]).retry
    assert sources().check("pool", []).retry
