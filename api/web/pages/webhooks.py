"""The outbound-webhooks page (admins only): the subscriptions, and the deliveries that died,
each with a Retry button that sends it again with the same `webhook-id` and body."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.web.pages.base import Csrf, Viewer, check, render, services_of
from rca.store.keys import Role
from rca.store.webhooks import DeliveryState, RetryPolicy, Webhooks

router = APIRouter(prefix="/ui", include_in_schema=False)
SHOWN = 100
"""The most dead deliveries listed (newest first)."""


def webhooks_of(request: Request) -> Webhooks:
    services = services_of(request)
    return Webhooks(services.store.engine, RetryPolicy.of(services.settings.outbound))


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request, session: Viewer) -> HTMLResponse:
    if not session.principal.role.allows(Role.ADMIN):
        raise HTTPException(403, "this needs the admin role")
    webhooks = webhooks_of(request)
    dead = webhooks.deliveries(SHOWN + 1, state=DeliveryState.DEAD)
    return render(
        request,
        "webhooks.html",
        session,
        subscriptions=webhooks.subscriptions(),
        dead=dead[:SHOWN],
        more=len(dead) > SHOWN,
    )


@router.post("/webhooks/deliveries/{delivery_id}/retry")
def retry_delivery(
    delivery_id: Annotated[str, Path(max_length=64)],
    request: Request,
    session: Viewer,
    csrf: Csrf,
) -> RedirectResponse:
    check(session, csrf, Role.ADMIN)
    webhooks_of(request).retry(delivery_id)
    return RedirectResponse("/ui/webhooks", status_code=303)
