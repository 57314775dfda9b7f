"""Incidents: create (idempotent), get, list; similar past incidents; draft requests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from api.auth import require
from api.schemas import (
    MAX_PAGE,
    DraftJobPublic,
    DraftRequest,
    IncidentListItem,
    Page,
    decode_time_cursor,
    encode_cursor,
)
from api.services import Services
from rca.domain import Incident, Severity
from rca.domain.similar import SearchResult
from rca.domain.values import Timestamp
from rca.store import Outcome
from rca.store.idempotency import Replay, body_hash
from rca.store.keys import Principal, Role

router = APIRouter(prefix="/v1", tags=["incidents"])
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Makes the request safe to retry: a replay returns the stored result.",
    ),
]


def services_of(request: Request) -> Services:
    """The app's services."""
    services: Services = request.app.state.services
    return services


def idempotent(
    services: Services,
    principal: Principal,
    key: str | None,
    request: Request,
    payload: str,
    run: Callable[[], tuple[int, Any, dict[str, str]]],
) -> Response:
    """Run `run` once per (principal, key, request); replay its stored answer afterwards."""
    if key is None:
        status, body, headers = run()
        return JSONResponse(body, status_code=status, headers=headers)
    digest = body_hash(request.method, request.url.path, payload.encode())
    # `run`'s writes and the stored answer commit together: a crash leaves both or neither.
    done = services.idempotency.once(
        principal.key_id, key, digest, run, lambda ran: Replay(ran[0], json.dumps(ran[1]))
    )
    if isinstance(done, Replay):
        return Response(
            done.body,
            status_code=done.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    status, body, headers = done
    return JSONResponse(body, status_code=status, headers=headers)


@router.post(
    "/incidents",
    status_code=201,
    response_model=Incident,
    responses={200: {"description": "The same incident was already stored"}},
)
def create_incident(
    incident: Incident,
    request: Request,
    principal: Engineer,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Store an incident (its id and evidence ids are assigned when left out)."""
    services = services_of(request)

    def run() -> tuple[int, Any, dict[str, str]]:
        saved = services.store.create_incident(
            incident, source=f"api:{principal.key_id}", actor=principal.name
        )
        status = 200 if saved.outcome is Outcome.UNCHANGED else 201
        body = incident.model_dump(mode="json")
        return status, body, {"Location": f"/v1/incidents/{incident.id}"}

    payload = incident.model_dump_json(exclude={"id"} if idempotency_key else set())
    return idempotent(services, principal, idempotency_key, request, payload, run)


@router.get("/incidents/{incident_id}", response_model=Incident)
async def get_incident(incident_id: str, request: Request, _principal: Engineer) -> Response:
    """One incident with all its evidence."""
    services = services_of(request)
    incident = await services.quick(services.store.get_incident, incident_id)
    return Response(incident.model_dump_json(), media_type="application/json")


@router.get("/incidents", response_model=Page[IncidentListItem])
async def list_incidents(
    request: Request,
    _principal: Engineer,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    severity: Annotated[list[Severity] | None, Query()] = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
) -> Page[IncidentListItem]:
    """Incidents, newest first, a page at a time; `since` and `until` bound their start."""
    after = decode_time_cursor(cursor)
    store = services_of(request).store
    rows = await services_of(request).quick(
        store.incident_page, limit + 1, after, severity or [], since, until
    )
    items = [IncidentListItem(**vars(r)) for r in rows[:limit]]
    following = None
    if len(rows) > limit:
        last = rows[limit - 1]
        following = encode_cursor(last.started_at.isoformat(), last.id)
    return Page[IncidentListItem](items=items, next_cursor=following)


@router.get("/incidents/{incident_id}/similar", response_model=SearchResult)
async def similar_incidents(
    incident_id: str,
    request: Request,
    _principal: Engineer,
    k: Annotated[int, Query(ge=1, le=50)] = 5,
) -> SearchResult:
    """Past postmortems most similar to the incident, with why each matched."""
    services = services_of(request)
    incident = await services.quick(services.store.get_incident, incident_id)
    return await services.search_similar(incident, k)


@router.post(
    "/incidents/{incident_id}/drafts",
    status_code=202,
    response_model=DraftJobPublic,
)
def request_draft(
    incident_id: str,
    request: Request,
    principal: Engineer,
    body: DraftRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Queue a draft analysis; poll `GET /v1/drafts/{id}` or stream its events."""
    services = services_of(request)
    model = services.check_model(body.model if body else None)

    def run() -> tuple[int, Any, dict[str, str]]:
        job = services.submit_draft(incident_id, model, principal)
        public = DraftJobPublic.of(job).model_dump(mode="json")
        return 202, public, {"Location": f"/v1/drafts/{job.id}"}

    payload = json.dumps({"incident": incident_id, "model": model})
    # A write, so in a worker thread: inline on the event loop it measured a higher p99 (the
    # loop waits whenever the other server process holds the write lock).
    return idempotent(services, principal, idempotency_key, request, payload, run)
