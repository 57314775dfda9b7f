"""Webhooks from the tools a team already runs: Alertmanager, PagerDuty and GitHub.

Each answers 202 with what it did (`Intake`): an unknown event type or a payload with nothing to
store is 202 with a reason and stores nothing; a wrong or missing token or signature is 401 and
stores nothing; a malformed payload is 422 naming the field; a redelivery stores nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from api import metrics
from api.auth import integration_of
from api.routes_incidents import services_of
from rca.errors import ConfigurationError
from rca.integrations import alertmanager, github, pagerduty
from rca.integrations.signatures import verify_github, verify_pagerduty
from rca.store.intake import Intake, receive_alert_group, receive_github, receive_pagerduty
from rca.store.integrations import IntegrationInfo, IntegrationKind

router = APIRouter(prefix="/v1/hooks", tags=["hooks"])
_CHALLENGE = {"WWW-Authenticate": 'Signature realm="rca"'}


class IntakePublic(BaseModel):
    """What a delivery did."""

    outcome: str
    """`opened`, `appended`, `resolved`, `unchanged`, `repeat`, `ignored` or `recorded`."""
    incident_id: str | None
    """The incident opened or changed."""
    added: list[str]
    """Evidence ids added."""
    reason: str | None
    """Why nothing was stored (`ignored`, `repeat`)."""
    change_id: str | None
    """The change recorded in the feed (GitHub)."""


def _public(request: Request, done: Intake) -> IntakePublic:
    metrics.note_intake(request, done.outcome)
    return IntakePublic(
        outcome=done.outcome,
        incident_id=done.incident_id,
        added=list(done.added),
        reason=done.reason,
        change_id=done.change_id,
    )


def _invalid(err: ValidationError) -> RequestValidationError:
    """A payload's validation errors as the API's 422, located in the body."""
    errors = [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False)]
    return RequestValidationError(errors)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"not JSON: {err}", "type": "json_invalid"}]
        ) from None


def signed_by(
    kind: IntegrationKind, header: str, verify: Callable[[bytes, str | None, list[str]], bool]
) -> Callable[[Request], Awaitable[IntegrationInfo]]:
    """A dependency: the integration of `kind` whose secret signed the body, else 401."""

    async def dependency(request: Request) -> IntegrationInfo:
        services = services_of(request)
        body = await request.body()
        offered = request.headers.get(header)
        for ident, secret in await services.quick(services.integrations.signing_secrets, kind):
            if verify(body, offered, [secret]):
                found: IntegrationInfo = await services.quick(services.integrations.get, ident)
                return found
        raise HTTPException(401, f"the {header} signature does not match", headers=_CHALLENGE)

    dependency.required_role = "integration"  # type: ignore[attr-defined]
    return dependency


AlertmanagerIntegration = Annotated[IntegrationInfo, Depends(integration_of)]
PagerDutyIntegration = Annotated[
    IntegrationInfo,
    Depends(signed_by(IntegrationKind.PAGERDUTY, "X-PagerDuty-Signature", verify_pagerduty)),
]
GitHubIntegration = Annotated[
    IntegrationInfo,
    Depends(signed_by(IntegrationKind.GITHUB, "X-Hub-Signature-256", verify_github)),
]


def _mapping(request: Request, name: str, model: type[BaseModel]) -> Any:
    raw = getattr(services_of(request).settings.integrations, name)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(
            f"bad setting RCA_INTEGRATIONS__{name.upper()} ({where}): {first['msg']}"
        ) from None


@router.post("/alertmanager", status_code=202, response_model=IntakePublic)
async def alertmanager_hook(request: Request, integration: AlertmanagerIntegration) -> IntakePublic:
    """Alertmanager's webhook (payload version 4), with an integration token as bearer."""
    body = await request.body()
    try:
        notification = alertmanager.parse_notification(body)
        group = alertmanager.translate(
            notification, _mapping(request, "alertmanager", alertmanager.LabelMapping)
        )
    except ValidationError as err:
        raise _invalid(err) from None
    engine = services_of(request).store.engine
    done = await run_in_threadpool(receive_alert_group, engine, integration, group)
    return _public(request, done)


@router.post("/pagerduty", status_code=202, response_model=IntakePublic)
async def pagerduty_hook(request: Request, integration: PagerDutyIntegration) -> IntakePublic:
    """PagerDuty's v3 webhook, signed with the subscription's secret."""
    payload = _json(await request.body())
    try:
        event = pagerduty.translate(
            payload, _mapping(request, "pagerduty", pagerduty.PagerDutyMapping)
        )
    except ValidationError as err:
        raise _invalid(err) from None
    engine = services_of(request).store.engine
    done = await run_in_threadpool(receive_pagerduty, engine, integration, event)
    return _public(request, done)


@router.post("/github", status_code=202, response_model=IntakePublic)
async def github_hook(request: Request, integration: GitHubIntegration) -> IntakePublic:
    """GitHub's webhook; `deployment_status` events become changes in the feed."""
    event = request.headers.get("X-GitHub-Event", "")
    delivery = request.headers.get("X-GitHub-Delivery")
    body = await request.body()
    try:
        change = github.translate(body, event)
    except ValidationError as err:
        raise _invalid(err) from None
    engine = services_of(request).store.engine
    return _public(
        request,
        await run_in_threadpool(
            receive_github, engine, integration, change, delivery[:200] if delivery else None
        ),
    )
