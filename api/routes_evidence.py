"""Evidence added after an incident was created, and the incident's revisions.

`POST /v1/incidents/{id}/evidence` appends alerts, timeline events, log lines or chat (new ids
are assigned where left out); each addition that changes the incident is its next revision,
and every draft records the revision it was written from. `/evidence/slack` takes Slack's own
`conversations.history` response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel

from api.auth import require
from api.routes_incidents import IdempotencyKey, idempotent, services_of
from rca.domain import Incident
from rca.domain.additions import EvidenceAdditions, IncidentChange, NewChatMessage
from rca.domain.values import Timestamp
from rca.errors import InvalidArgument
from rca.integrations.slack import SlackHistoryUpload, read_history
from rca.store.incident_changes import ChangeResult
from rca.store.integrations import links_of
from rca.store.keys import Principal, Role

router = APIRouter(prefix="/v1", tags=["evidence"])
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]
IncidentId = Annotated[str, Path(max_length=128)]


class EvidenceResult(BaseModel):
    """What an addition did."""

    incident_id: str
    revision: int
    """The incident's revision after the addition (unchanged when nothing was new)."""
    added: list[str]
    """Ids of the items added, in order."""
    repeated: list[str]
    """Ids already stored with the same content (a retried request): not added again."""
    skipped: dict[str, int] = {}
    """Items left out of the source before adding, by reason (Slack history only)."""


class RevisionPublic(BaseModel):
    """One revision of an incident."""

    revision: int
    created_at: datetime
    actor: str
    source: str
    change: dict[str, Any]
    """What it did: `created`, `replaced`, the ids `added`, the `fields` set."""


class SourcePublic(BaseModel):
    """Another tool's incident or alert group that opened or fed this incident."""

    source: str
    open: bool
    detail: dict[str, Any]
    created_at: datetime


def _result(incident_id: str, done: ChangeResult, skipped: dict[str, int]) -> dict[str, Any]:
    body = EvidenceResult(
        incident_id=incident_id,
        revision=done.revision,
        added=done.added,
        repeated=done.repeated,
        skipped=skipped,
    )
    return body.model_dump(mode="json")


def append(
    request: Request,
    principal: Principal,
    incident_id: str,
    additions: EvidenceAdditions,
    idempotency_key: str | None,
    source: str,
    skipped: dict[str, int] | None = None,
) -> Response:
    """Append `additions` to the incident (idempotent with a key); 201 when anything was
    added, 200 when everything was already there."""
    services = services_of(request)

    def run() -> tuple[int, Any, dict[str, str]]:
        done = services.store.change_incident(
            incident_id, IncidentChange(evidence=additions), principal.name, source
        )
        status = 201 if done.added else 200
        return status, _result(incident_id, done, skipped or {}), {}

    payload = f"{incident_id}\n{additions.model_dump_json()}"
    return idempotent(services, principal, idempotency_key, request, payload, run)


@router.post(
    "/incidents/{incident_id}/evidence",
    status_code=201,
    response_model=EvidenceResult,
    responses={200: {"description": "Every item was already stored"}},
)
def add_evidence(
    incident_id: IncidentId,
    additions: EvidenceAdditions,
    request: Request,
    principal: Engineer,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Append alerts, timeline events, log lines or chat messages to a stored incident."""
    return append(
        request, principal, incident_id, additions, idempotency_key, f"api:{principal.key_id}"
    )


@router.post(
    "/incidents/{incident_id}/evidence/slack",
    status_code=201,
    response_model=EvidenceResult,
    responses={200: {"description": "Every message was already stored"}},
)
def add_slack_history(
    incident_id: IncidentId,
    upload: SlackHistoryUpload,
    request: Request,
    principal: Engineer,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Append a Slack `conversations.history` response (with `conversations.replies` for its
    threads) as chat: user ids resolved from `users`, markup made plain, joins, leaves and file
    uploads skipped, edits at their latest text. Sending the same history again adds nothing."""
    history = read_history(**upload.model_dump(), since=since, until=until)
    if not history.messages:
        raise InvalidArgument(
            f"no messages to add ({', '.join(f'{n} {why}' for why, n in history.skipped.items())})"
            if history.skipped
            else "the history holds no messages"
        )
    additions = EvidenceAdditions(chat=[NewChatMessage(**m.model_dump()) for m in history.messages])
    return append(
        request,
        principal,
        incident_id,
        additions,
        idempotency_key,
        f"slack:{principal.key_id}",
        history.skipped,
    )


@router.get("/incidents/{incident_id}/revisions", response_model=list[RevisionPublic])
async def incident_revisions(
    incident_id: IncidentId, request: Request, _principal: Engineer
) -> list[RevisionPublic]:
    """Every revision of the incident, oldest first: who changed it, from where, and how."""
    services = services_of(request)
    rows = await services.quick(services.store.incident_revisions, incident_id)
    return [RevisionPublic(**vars(r)) for r in rows]


@router.get("/incidents/{incident_id}/revisions/{revision}", response_model=Incident)
async def incident_at_revision(
    incident_id: IncidentId,
    revision: Annotated[int, Path(ge=1, le=2**31 - 1)],
    request: Request,
    _principal: Engineer,
) -> Response:
    """The incident as it was at one revision (the evidence a draft was written from)."""
    services = services_of(request)
    incident = await services.quick(services.store.incident_at, incident_id, revision)
    return Response(incident.model_dump_json(), media_type="application/json")


@router.get("/incidents/{incident_id}/sources", response_model=list[SourcePublic])
async def incident_sources(
    incident_id: IncidentId, request: Request, _principal: Engineer
) -> list[SourcePublic]:
    """The Alertmanager groups and PagerDuty incidents that opened or fed this incident."""
    services = services_of(request)
    await services.quick(services.store.get_incident, incident_id)  # 404 for an unknown one
    links = await services.quick(links_of, services.store.engine, incident_id)
    return [SourcePublic(**vars(link)) for link in links]
