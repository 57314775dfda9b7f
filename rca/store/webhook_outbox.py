"""The outbox of outbound webhooks: messages waiting, claimed, delivered or dead.

Senders take due messages with `claim_due`: the claim moves `next_attempt_at` on by a lease, in
one write transaction, so two senders never hold the same message at once, and a sender that
dies lets its claims lapse back into the queue. A message keeps its id (the `webhook-id`) and
its body on every attempt. A failure schedules the next attempt after an exponential backoff
with jitter; after the most attempts, or once too old, the message is dead until an admin
retries it (`retry`). Queuing is `rca.store.webhooks.enqueue`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from rca.config import OutboundSettings
from rca.errors import Conflict, NotFound
from rca.store.engine import read_transaction
from rca.store.webhook_tables import (
    DeliveryState,
    WebhookEvent,
    webhook_deliveries,
    webhook_subscriptions,
)
from rca.store.writes import now, writing


@dataclass(frozen=True)
class Delivery:
    """One message to one subscription; `id` is its `webhook-id`, `payload` the exact body."""

    id: str
    subscription_id: str
    event_type: WebhookEvent
    payload: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_status: int | None
    created_at: datetime
    queued_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class Claim:
    """A message a sender holds until `until`, with what it needs to send it."""

    delivery: Delivery
    url: str
    secret: str
    until: datetime
    """The claim's end; it is also the claim's token (`mark_failed` checks it is still held)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How failed messages are retried."""

    max_attempts: int = 24
    base_backoff_s: float = 10.0
    max_backoff_s: float = 3_600.0
    max_age_s: float = 2 * 86_400

    @classmethod
    def of(cls, settings: OutboundSettings) -> RetryPolicy:
        """The policy the settings ask for."""
        return cls(
            settings.max_attempts,
            settings.base_backoff_s,
            settings.max_backoff_s,
            settings.max_age_s,
        )

    def backoff_s(self, failed_attempts: int, jitter: float) -> float:
        """The wait after `failed_attempts` failures: base * 2**(n-1), capped, times
        `jitter` (drawn from 0.5 to 1.5)."""
        exponent = min(max(failed_attempts - 1, 0), 60)
        return min(self.max_backoff_s, self.base_backoff_s * 2.0**exponent) * jitter


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        subscription_id=row.subscription_id,
        event_type=WebhookEvent(row.event_type),
        payload=row.payload,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        last_status=row.last_status,
        created_at=row.created_at,
        queued_at=row.queued_at,
        delivered_at=row.delivered_at,
    )


class WebhookOutbox:
    """The messages: listing them, and what senders and admins do to them."""

    def __init__(self, engine: Engine, policy: RetryPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or RetryPolicy()

    def delivery(self, ident: str) -> Delivery:
        """One message (NotFound if unknown)."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(webhook_deliveries).where(webhook_deliveries.c.id == ident)
            ).one_or_none()
        if row is None:
            raise NotFound("webhook delivery", ident)
        return _delivery(row)

    def deliveries(
        self,
        limit: int,
        after: tuple[datetime, str] | None = None,
        state: DeliveryState | None = None,
        subscription_id: str | None = None,
    ) -> list[Delivery]:
        """Up to `limit` messages, newest first, after the (created_at, id) of the last one
        seen; of one state, of one subscription."""
        d = webhook_deliveries.c
        query = select(webhook_deliveries)
        if state is not None:
            query = query.where(d.state == state.value)
        if subscription_id is not None:
            query = query.where(d.subscription_id == subscription_id)
        if after is not None:
            query = query.where(
                or_(d.created_at < after[0], and_(d.created_at == after[0], d.id < after[1]))
            )
        with read_transaction(self.engine) as conn:
            rows = conn.execute(query.order_by(d.created_at.desc(), d.id.desc()).limit(limit))
            return [_delivery(r) for r in rows]

    def claim_due(self, at: datetime, limit: int, lease: timedelta) -> list[Claim]:
        """Claim up to `limit` pending messages due at `at`, oldest due first, for `lease`."""
        d = webhook_deliveries.c
        due = and_(d.state == DeliveryState.PENDING.value, d.next_attempt_at <= at)
        with read_transaction(self.engine) as conn:  # most polls find nothing: no write lock
            if conn.execute(select(d.id).where(due).limit(1)).first() is None:
                return []
        until = at + lease
        claims: list[Claim] = []
        with writing(self.engine) as conn:
            rows = conn.execute(
                select(
                    webhook_deliveries, webhook_subscriptions.c.url, webhook_subscriptions.c.secret
                )
                .join(webhook_subscriptions, webhook_subscriptions.c.id == d.subscription_id)
                .where(due, webhook_subscriptions.c.disabled_at.is_(None))
                .order_by(d.next_attempt_at, d.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=webhook_deliveries)
            ).all()
            for row in rows:
                taken = conn.execute(
                    update(webhook_deliveries)
                    .where(d.id == row.id, due, d.next_attempt_at == row.next_attempt_at)
                    .values(next_attempt_at=until)
                ).rowcount
                if taken:
                    claims.append(Claim(_delivery(row), row.url, row.secret, until))
        return claims

    def release(self, claims: list[Claim], at: datetime) -> None:
        """Give claims back unsent (a sender stopping): due again at `at`."""
        with writing(self.engine) as conn:
            for claim in claims:
                conn.execute(self._held(claim).values(next_attempt_at=at))

    def mark_delivered(self, claim: Claim, status: int, at: datetime) -> None:
        """Record that a receiver took the message (held or not: it was delivered)."""
        d = webhook_deliveries.c
        with writing(self.engine) as conn:
            conn.execute(
                update(webhook_deliveries)
                .where(d.id == claim.delivery.id, d.state == DeliveryState.PENDING.value)
                .values(
                    state=DeliveryState.DELIVERED.value,
                    attempts=d.attempts + 1,
                    last_status=status,
                    next_attempt_at=None,
                    delivered_at=at,
                )
            )

    def mark_failed(
        self,
        claim: Claim,
        error: str,
        status: int | None,
        at: datetime,
        jitter: float | None = None,
    ) -> Delivery | None:
        """Record a failed attempt: the next one after the backoff, or dead after the most
        attempts or once too old. None if the claim had lapsed (another sender owns it)."""
        attempts = claim.delivery.attempts + 1
        factor = random.uniform(0.5, 1.5) if jitter is None else jitter
        age_s = (at - claim.delivery.queued_at).total_seconds()
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_error": error[:500],
            "last_status": status,
        }
        if attempts >= self.policy.max_attempts or age_s >= self.policy.max_age_s:
            values.update(state=DeliveryState.DEAD.value, next_attempt_at=None)
        else:
            wait = self.policy.backoff_s(attempts, factor)
            values["next_attempt_at"] = at + timedelta(seconds=wait)
        with writing(self.engine) as conn:
            if not conn.execute(self._held(claim).values(**values)).rowcount:
                return None
            row = conn.execute(
                select(webhook_deliveries).where(webhook_deliveries.c.id == claim.delivery.id)
            ).one()
        return _delivery(row)

    def retry(self, ident: str) -> Delivery:
        """Send a dead message again, soon: pending, attempts and age reset, same id and body.
        Conflict unless it is dead, or if its subscription is disabled."""
        d = webhook_deliveries.c
        with writing(self.engine) as conn:
            row = conn.execute(
                select(webhook_deliveries, webhook_subscriptions.c.disabled_at)
                .join(webhook_subscriptions, webhook_subscriptions.c.id == d.subscription_id)
                .where(d.id == ident)
            ).one_or_none()
            if row is None:
                raise NotFound("webhook delivery", ident)
            if row.state != DeliveryState.DEAD.value:
                raise Conflict(f"webhook delivery {ident!r} is {row.state}, not dead")
            if row.disabled_at is not None:
                raise Conflict(
                    f"the subscription of webhook delivery {ident!r} is disabled; "
                    "subscribe again to receive new events"
                )
            stamp = now()
            conn.execute(
                update(webhook_deliveries)
                .where(d.id == ident)
                .values(
                    state=DeliveryState.PENDING.value,
                    attempts=0,
                    next_attempt_at=stamp,
                    queued_at=stamp,
                )
            )
        return self.delivery(ident)

    @staticmethod
    def _held(claim: Claim) -> Any:
        """An update of the message, if the claim still holds it."""
        d = webhook_deliveries.c
        return update(webhook_deliveries).where(
            d.id == claim.delivery.id,
            d.state == DeliveryState.PENDING.value,
            d.next_attempt_at == claim.until,
        )
