"""Past postmortems' actions: offered only for the same failure, and only the ones about it."""

from __future__ import annotations

from typing import Any

from rca.domain import Postmortem
from rca.drafting.assembly import Claim
from rca.drafting.precedents import precedents
from tests.factories import postmortem_data

POOL = "The new automatic pool sizing derived the database pool size from the container CPU limit"
ROLLOUT = (
    "The release was rolled out to all regions at once without a canary stage comparing error rates"
)


def past(**changes: Any) -> Postmortem:
    data = postmortem_data(
        id="pm-2025-checkout", services=["checkout-api"], root_causes=[POOL, ROLLOUT]
    )
    data["action_items"] = [
        {"text": "Set the checkout-api database pool size explicitly", "kind": "prevent"},
        {"text": "Add a canary stage to checkout-api deploys", "kind": "prevent"},
        {"text": "Write the pm-2025-checkout follow-up", "kind": "process"},
    ]
    return Postmortem.model_validate({**data, **changes})


def test_a_few_shared_words_are_not_the_same_failure() -> None:
    """ "rolling restart … failure rate" shares "roll" and "rate" with the rollout cause."""
    cause = Claim("Rolling restart of the CoreDNS deployment; no change in failure rate", ["t3"])
    assert precedents([cause], [past()], "auth-service") == []


def test_the_same_failure_mode_offers_only_the_actions_about_that_cause() -> None:
    cause = Claim("The config change was pushed to all regions at once with no canary", ["c2"])
    found = precedents([cause], [past()], "edge-config")
    assert [p.text for p in found] == ["Add a canary stage to edge-config deploys"]
    assert found[0].cause == 0 and found[0].source == "similar past incident pm-2025-checkout"


def test_most_words_shared_is_enough_without_a_mode() -> None:
    cause = Claim("Automatic pool sizing derived the pool size from the CPU limit", ["l2"])
    found = precedents([cause], [past()], "orders-api")
    assert [p.text for p in found] == ["Set the orders-api database pool size explicitly"]


def test_an_action_naming_the_past_incident_is_left_out() -> None:
    cause = Claim("Automatic pool sizing derived the pool size from the CPU limit", ["l2"])
    pm = past()
    data = pm.model_dump(mode="json")
    data["action_items"] = [{"text": "Redo the pool sizing of pm-2025-checkout", "kind": "prevent"}]
    assert precedents([cause], [Postmortem.model_validate(data)], "orders-api") == []
    # without a service of its own, the past service name cannot be replaced: left out
    assert precedents([cause], [past()], None) == []
