"""Outbound webhooks: subscriptions to rca's events, and queuing their messages.

A subscription names a receiver URL (http or https, no credentials in it) and the event types
it wants; rca makes its signing secret (`whsec_...`, shown once, kept to sign with). An event is
queued with `enqueue` inside the write transaction that caused it (one message per active
subscription wanting it), so it commits with that write or not at all. Disabling a
subscription kills its pending messages. `Webhooks` adds the subscriptions to the outbox
(`rca.store.webhook_outbox`: claims, retries, the dead).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, insert, select, update

from rca.errors import InvalidArgument, NotFound
from rca.integrations.signatures import new_webhook_secret
from rca.store.engine import read_transaction
from rca.store.webhook_outbox import Claim, Delivery, RetryPolicy, WebhookOutbox
from rca.store.webhook_tables import (
    DeliveryState,
    WebhookEvent,
    webhook_deliveries,
    webhook_subscriptions,
)
from rca.store.writes import now, writing

__all__ = [
    "Claim",
    "CreatedSubscription",
    "Delivery",
    "DeliveryState",
    "RetryPolicy",
    "Subscription",
    "WebhookEvent",
    "Webhooks",
    "enqueue",
    "subscribed",
]

MAX_URL = 2_000
"""The longest subscription URL accepted."""
MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class Subscription:
    """A receiver of events, without its secret."""

    id: str
    url: str
    event_types: tuple[WebhookEvent, ...]
    description: str | None
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class CreatedSubscription:
    """A new subscription and its signing secret (shown once)."""

    subscription: Subscription
    secret: str


def check_url(url: str) -> str:
    """The URL, stripped, if rca may post to it; else InvalidArgument saying why."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise InvalidArgument(f"a webhook URL has 1 to {MAX_URL} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidArgument("a webhook URL holds no spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise InvalidArgument("the webhook URL cannot be read") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument("a webhook URL is http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument("a webhook URL carries no credentials; they would be logged")
    if not parts.hostname:
        raise InvalidArgument("a webhook URL names a host")
    if parts.fragment:
        raise InvalidArgument("a webhook URL has no #fragment")
    return url


def check_event_types(values: list[str]) -> tuple[WebhookEvent, ...]:
    """The event types, deduplicated in order; InvalidArgument naming an unknown one."""
    known = {e.value: e for e in WebhookEvent}
    found: list[WebhookEvent] = []
    for value in values:
        if value not in known:
            raise InvalidArgument(f"unknown event type {value[:60]!r}; known: {', '.join(known)}")
        if known[value] not in found:
            found.append(known[value])
    if not found:
        raise InvalidArgument("a subscription wants at least one event type")
    return tuple(found)


def _subscription(row: Any) -> Subscription:
    types = tuple(WebhookEvent(t) for t in json.loads(row.event_types))
    return Subscription(row.id, row.url, types, row.description, row.created_at, row.disabled_at)


def new_message_id() -> str:
    """A fresh `webhook-id`: `msg_`, a sortable time, 16 random hex digits."""
    return f"msg_{now().strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(8)}"


def enqueue(
    conn: Connection,
    event_type: WebhookEvent,
    data: dict[str, Any],
    subscribed_before: datetime | None = None,
) -> list[str]:
    """Queue `event_type` for every active subscription wanting it (created before
    `subscribed_before`, if given), inside the caller's write transaction; the ids of the
    messages queued (none when nobody subscribed). The body is Standard Webhooks' shape:
    `{"type", "timestamp", "data"}`."""
    query = select(webhook_subscriptions.c.id, webhook_subscriptions.c.event_types).where(
        webhook_subscriptions.c.disabled_at.is_(None)
    )
    if subscribed_before is not None:
        query = query.where(webhook_subscriptions.c.created_at < subscribed_before)
    rows = conn.execute(query).all()
    wanting = [r.id for r in rows if event_type.value in json.loads(r.event_types)]
    if not wanting:
        return []
    stamp = now()
    body = json.dumps(
        {
            "type": event_type.value,
            "timestamp": stamp.isoformat().replace("+00:00", "Z"),
            "data": data,
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    ids = [new_message_id() for _ in wanting]
    conn.execute(
        insert(webhook_deliveries),
        [
            {
                "id": ident,
                "subscription_id": subscription,
                "event_type": event_type.value,
                "payload": body,
                "state": DeliveryState.PENDING.value,
                "attempts": 0,
                "next_attempt_at": stamp,
                "created_at": stamp,
                "queued_at": stamp,
            }
            for ident, subscription in zip(ids, wanting, strict=True)
        ],
    )
    return ids


def subscribed(conn: Connection, event_type: WebhookEvent) -> bool:
    """Whether any active subscription wants `event_type` (to skip building a payload)."""
    rows = conn.execute(
        select(webhook_subscriptions.c.event_types).where(
            webhook_subscriptions.c.disabled_at.is_(None)
        )
    ).scalars()
    return any(event_type.value in json.loads(types) for types in rows)


class Webhooks(WebhookOutbox):
    """Subscriptions, and the outbox (what the API, the UI and the senders use)."""

    def create(
        self, url: str, event_types: list[str], description: str | None = None
    ) -> CreatedSubscription:
        """A new subscription with a fresh signing secret."""
        url = check_url(url)
        types = check_event_types(event_types)
        description = (description or "").strip() or None
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise InvalidArgument(f"a description has at most {MAX_DESCRIPTION} characters")
        ident = "whs_" + secrets.token_hex(6)
        secret = new_webhook_secret()
        stamp = now()
        with writing(self.engine) as conn:
            conn.execute(
                insert(webhook_subscriptions).values(
                    id=ident,
                    url=url,
                    event_types=json.dumps([t.value for t in types]),
                    secret=secret,
                    description=description,
                    created_at=stamp,
                )
            )
        return CreatedSubscription(
            Subscription(ident, url, types, description, stamp, None), secret
        )

    def get(self, ident: str) -> Subscription:
        """One subscription (NotFound if unknown)."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(webhook_subscriptions).where(webhook_subscriptions.c.id == ident)
            ).one_or_none()
        if row is None:
            raise NotFound("webhook subscription", ident)
        return _subscription(row)

    def subscriptions(self) -> list[Subscription]:
        """Every subscription, newest first (disabled ones too)."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(webhook_subscriptions).order_by(
                    webhook_subscriptions.c.created_at.desc(), webhook_subscriptions.c.id
                )
            ).all()
        return [_subscription(r) for r in rows]

    def disable(self, ident: str) -> Subscription:
        """Disable a subscription (again: no change); its pending messages die with it."""
        with writing(self.engine) as conn:
            row = conn.execute(
                select(webhook_subscriptions).where(webhook_subscriptions.c.id == ident)
            ).one_or_none()
            if row is None:
                raise NotFound("webhook subscription", ident)
            if row.disabled_at is None:
                stamp = now()
                conn.execute(
                    update(webhook_subscriptions)
                    .where(webhook_subscriptions.c.id == ident)
                    .values(disabled_at=stamp)
                )
                conn.execute(
                    update(webhook_deliveries)
                    .where(
                        webhook_deliveries.c.subscription_id == ident,
                        webhook_deliveries.c.state == DeliveryState.PENDING.value,
                    )
                    .values(
                        state=DeliveryState.DEAD.value,
                        next_attempt_at=None,
                        last_error="the subscription was disabled",
                    )
                )
        return self.get(ident)
