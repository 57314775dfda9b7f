"""Outbound webhooks (admin role only): subscriptions to rca's events, and their deliveries.

`POST /v1/webhooks` subscribes a URL to event types and answers the signing secret, once;
receivers check each delivery's `webhook-signature` with it (Standard Webhooks). Deliveries
are listed by state (`?state=dead` shows those out of attempts) and a dead one can be sent
again, with the same `webhook-id` and body.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require
from api.routes_incidents import services_of
from api.schemas import MAX_PAGE, Page, decode_time_cursor, encode_cursor
from rca.store.keys import Principal, Role
from rca.store.webhooks import (
    MAX_DESCRIPTION,
    MAX_URL,
    Delivery,
    DeliveryState,
    RetryPolicy,
    Subscription,
    WebhookEvent,
    Webhooks,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
SubscriptionId = Annotated[str, Path(max_length=32, description="The subscription's id.")]
DeliveryId = Annotated[str, Path(max_length=64, description="The delivery's `webhook-id`.")]


class WebhookCreate(BaseModel):
    """A new subscription."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_URL)
    """Where to post: http:// or https://, without credentials."""
    event_types: list[WebhookEvent] = Field(min_length=1, max_length=len(WebhookEvent))
    """The events wanted."""
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    """What it is for."""


class WebhookPublic(BaseModel):
    """A subscription, without its secret."""

    id: str
    url: str
    event_types: list[WebhookEvent]
    description: str | None
    active: bool
    """False once disabled: nothing more is sent to it."""
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def of(cls, sub: Subscription) -> WebhookPublic:
        """The public form of a stored subscription."""
        return cls(
            id=sub.id,
            url=sub.url,
            event_types=list(sub.event_types),
            description=sub.description,
            active=sub.disabled_at is None,
            created_at=sub.created_at,
            disabled_at=sub.disabled_at,
        )


class WebhookCreated(WebhookPublic):
    """A new subscription with its signing secret, shown in this answer only."""

    secret: str
    """`whsec_<base64>`: the key receivers check `webhook-signature` with."""


class DeliveryPublic(BaseModel):
    """One message to one subscription."""

    id: str
    """The `webhook-id` header, the same on every attempt."""
    subscription_id: str
    event_type: WebhookEvent
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    """When a pending message is next sent."""
    last_error: str | None
    last_status: int | None
    """The HTTP status of the last answer, if there was one."""
    created_at: datetime
    delivered_at: datetime | None
    body: dict[str, Any]
    """The body posted: `{"type", "timestamp", "data"}`."""

    @classmethod
    def of(cls, found: Delivery) -> DeliveryPublic:
        """The public form of a stored delivery."""
        return cls(
            id=found.id,
            subscription_id=found.subscription_id,
            event_type=found.event_type,
            state=found.state,
            attempts=found.attempts,
            next_attempt_at=found.next_attempt_at,
            last_error=found.last_error,
            last_status=found.last_status,
            created_at=found.created_at,
            delivered_at=found.delivered_at,
            body=json.loads(found.payload),
        )


def webhooks_of(request: Request) -> Webhooks:
    """The subscriptions and outbox, with the configured retry policy."""
    services = services_of(request)
    return Webhooks(services.store.engine, RetryPolicy.of(services.settings.outbound))


# --- deliveries (before /{id}, which would take "deliveries" for an id) ----------------------


@router.get("/deliveries", response_model=Page[DeliveryPublic])
def list_deliveries(
    request: Request,
    _p: Admin,
    state: DeliveryState | None = None,
    subscription_id: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Page[DeliveryPublic]:
    """Deliveries, newest first, a page at a time; of one state, of one subscription."""
    after = decode_time_cursor(cursor)
    rows = webhooks_of(request).deliveries(limit + 1, after, state, subscription_id)
    following = None
    if len(rows) > limit:
        last = rows[limit - 1]
        following = encode_cursor(last.created_at.isoformat(), last.id)
    return Page[DeliveryPublic](
        items=[DeliveryPublic.of(r) for r in rows[:limit]], next_cursor=following
    )


@router.get("/deliveries/{delivery_id}", response_model=DeliveryPublic)
def get_delivery(delivery_id: DeliveryId, request: Request, _p: Admin) -> DeliveryPublic:
    """One delivery."""
    return DeliveryPublic.of(webhooks_of(request).delivery(delivery_id))


@router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryPublic)
def retry_delivery(delivery_id: DeliveryId, request: Request, _p: Admin) -> DeliveryPublic:
    """Send a dead delivery again (same id, same body; attempts start over); 409 unless it is
    dead or if its subscription is disabled."""
    return DeliveryPublic.of(webhooks_of(request).retry(delivery_id))


# --- subscriptions ---------------------------------------------------------------------------


@router.post("", status_code=201, response_model=WebhookCreated)
def create_subscription(
    body: WebhookCreate, request: Request, response: Response, _p: Admin
) -> WebhookCreated:
    """Subscribe a URL to event types; the signing secret is in this answer only."""
    made = webhooks_of(request).create(
        body.url, [t.value for t in body.event_types], body.description
    )
    response.headers["Cache-Control"] = "no-store"
    return WebhookCreated(secret=made.secret, **WebhookPublic.of(made.subscription).model_dump())


@router.get("", response_model=list[WebhookPublic])
def list_subscriptions(request: Request, _p: Admin) -> list[WebhookPublic]:
    """Every subscription, newest first (disabled ones too), without secrets."""
    return [WebhookPublic.of(s) for s in webhooks_of(request).subscriptions()]


@router.get("/{subscription_id}", response_model=WebhookPublic)
def get_subscription(subscription_id: SubscriptionId, request: Request, _p: Admin) -> WebhookPublic:
    """One subscription, without its secret."""
    return WebhookPublic.of(webhooks_of(request).get(subscription_id))


@router.delete("/{subscription_id}", response_model=WebhookPublic)
def disable_subscription(
    subscription_id: SubscriptionId, request: Request, _p: Admin
) -> WebhookPublic:
    """Disable a subscription (again: no change): nothing more is sent to it, and its pending
    deliveries become dead."""
    return WebhookPublic.of(webhooks_of(request).disable(subscription_id))
