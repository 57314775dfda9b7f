"""The tables of outbound webhooks: who wants which of rca's events (`webhook_subscriptions`)
and the durable outbox of messages to them (`webhook_deliveries`), with the closed
vocabularies of their columns (`WebhookEvent`, `DeliveryState`).

Declared on the same `metadata` as `rca.store.engine`'s tables (migration 0007 creates them).
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from rca.store.engine import UTCDateTime, metadata


class WebhookEvent(StrEnum):
    """The events a subscription may ask for."""

    DRAFT_SUCCEEDED = "draft.succeeded"
    """A draft job finished: its draft is ready for review."""
    POSTMORTEM_FINALIZED = "postmortem.finalized"
    """A reviewed draft became a postmortem revision."""
    ACTION_ITEM_CREATED = "action_item.created"
    """A finalized postmortem revision brought a new action item."""
    ACTION_ITEM_UPDATED = "action_item.updated"
    """An action item's follow-up status changed."""
    DIGEST_READY = "digest.ready"
    """A digest period ended: what it brought (`RCA_OUTBOUND__DIGEST_EVERY_S`, weekly)."""


class DeliveryState(StrEnum):
    """Where a message stands."""

    PENDING = "pending"
    """Waiting for its next attempt (or being sent)."""
    DELIVERED = "delivered"
    """A receiver answered 2xx."""
    DEAD = "dead"
    """Out of attempts or too old; sent again only when an admin retries it."""


webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("url", Text, nullable=False),
    Column("event_types", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("description", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
)
"""Receivers of rca's events: the URL, the event types wanted (a JSON list) and the signing
secret (`whsec_...`, kept as given: signing needs it). Disabled ones get nothing more."""

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("subscription_id", String(32), ForeignKey("webhook_subscriptions.id"), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
)
"""The outbox: one message to one subscription, written in the transaction that caused it. The
id is the message's `webhook-id`, the same on every attempt; `payload` is the exact body sent.
`state` is pending, delivered or dead; a pending one is sent at `next_attempt_at` (a sender's
claim moves it on by a lease). `queued_at` is when it was queued or last retried by hand: a
message older than the maximum age since then dies."""
Index("ix_webhook_deliveries_due", webhook_deliveries.c.state, webhook_deliveries.c.next_attempt_at)
Index(
    "ix_webhook_deliveries_subscription",
    webhook_deliveries.c.subscription_id,
    webhook_deliveries.c.created_at,
)
Index("ix_webhook_deliveries_created", webhook_deliveries.c.created_at, webhook_deliveries.c.id)
