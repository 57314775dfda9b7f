"""The outbound-webhook outbox in the store: who gets which event, events that commit or roll
back with their write, the backoff schedule, and death by attempts or by age."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rca.errors import InvalidArgument
from rca.store import Store
from rca.store.webhooks import (
    DeliveryState,
    RetryPolicy,
    WebhookEvent,
    Webhooks,
    check_url,
    enqueue,
)
from rca.store.writes import now, writing


def test_backoff_doubles_from_the_base_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(max_attempts=30, base_backoff_s=10, max_backoff_s=3_600)
    assert [policy.backoff_s(n, 1.0) for n in range(1, 11)] == [
        10,
        20,
        40,
        80,
        160,
        320,
        640,
        1_280,
        2_560,
        3_600,
    ]
    assert policy.backoff_s(500, 1.0) == 3_600  # no overflow far out
    assert (policy.backoff_s(3, 0.5), policy.backoff_s(3, 1.5)) == (20, 60)


def test_an_event_goes_to_the_subscriptions_wanting_it_and_commits_with_its_write(
    store: Store,
) -> None:
    hooks = Webhooks(store.engine)
    drafts = hooks.create("https://a.example/h", ["draft.succeeded"]).subscription
    actions = hooks.create("https://b.example/h", ["action_item.updated"]).subscription
    with writing(store.engine) as conn:
        [first] = enqueue(conn, WebhookEvent.DRAFT_SUCCEEDED, {"draft_id": "d1"})
    assert hooks.delivery(first).subscription_id == drafts.id
    with pytest.raises(RuntimeError), writing(store.engine) as conn:
        enqueue(conn, WebhookEvent.ACTION_ITEM_UPDATED, {"item": 0})
        raise RuntimeError("the write that caused it fails")
    assert hooks.deliveries(10, subscription_id=actions.id) == []
    assert [d.id for d in hooks.deliveries(10)] == [first]


def test_a_message_dies_after_the_most_attempts_or_once_too_old(store: Store) -> None:
    hooks = Webhooks(store.engine, RetryPolicy(max_attempts=3, max_age_s=60))
    hooks.create("http://127.0.0.1:9/h", ["draft.succeeded"])
    with writing(store.engine) as conn:
        young, old = (enqueue(conn, WebhookEvent.DRAFT_SUCCEEDED, {"n": n})[0] for n in (1, 2))
    at = now()
    for attempt in (1, 2, 3):
        [claim] = [
            c for c in hooks.claim_due(at, 10, timedelta(seconds=30)) if c.delivery.id == young
        ]
        failed = hooks.mark_failed(claim, "HTTP 500", 500, at, jitter=1.0)
        assert failed is not None and failed.attempts == attempt
        at = failed.next_attempt_at or at
    assert hooks.delivery(young).state is DeliveryState.DEAD
    late = now() + timedelta(seconds=61)
    [claim] = hooks.claim_due(late, 10, timedelta(seconds=30))
    assert claim.delivery.id == old
    aged = hooks.mark_failed(claim, "cannot connect", None, late)
    assert aged is not None and (aged.state, aged.attempts) == (DeliveryState.DEAD, 1)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x.example/",
        "http://u@x.example/",
        "http://:pw@x.example/",
        "https://",
        "http://x\ny/",
    ],
)
def test_only_plain_http_urls_are_taken(url: str) -> None:
    with pytest.raises(InvalidArgument):
        check_url(url)
    assert check_url(" https://x.example:8443/a?b=c ") == "https://x.example:8443/a?b=c"
