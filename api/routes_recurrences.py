"""Recurrences: `GET /v1/postmortems/{id}/recurrences` (both sides: the past postmortems this one
may repeat, and the later ones that may repeat it), proposing them again, and a reviewer's
decision. Proposals are also made when a draft is finalized (`Services.propose_recurrences`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict

from api.auth import require
from api.routes_incidents import services_of
from rca.store.keys import Principal, Role
from rca.store.recurrences import Recurrence, RecurrenceState, recurrences_of

router = APIRouter(prefix="/v1", tags=["recurrences"])
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]
Reviewer = Annotated[Principal, Depends(require(Role.REVIEWER))]
Ident = Annotated[str, Path(max_length=128)]


class RecurrencePublic(BaseModel):
    """A link between a postmortem and a past one."""

    postmortem_id: str
    """The later postmortem."""
    past_postmortem_id: str
    """The earlier one it may repeat."""
    state: RecurrenceState
    score: float
    reasons: list[str]
    """Why it was proposed: shared failure modes, services, similarity rank."""
    open_actions: list[str]
    """The past postmortem's action items still open when it was confirmed."""
    flagged: bool
    """Confirmed while a promised fix of the past incident was still open."""
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None

    @classmethod
    def of(cls, found: Recurrence) -> RecurrencePublic:
        """The public form."""
        return cls(**vars(found), flagged=found.flagged)


class Decision(BaseModel):
    """A reviewer's decision on a proposed recurrence."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["confirm", "dismiss"]


@router.get("/postmortems/{postmortem_id}/recurrences", response_model=list[RecurrencePublic])
async def list_recurrences(
    postmortem_id: Ident, request: Request, _p: Engineer
) -> list[RecurrencePublic]:
    """The postmortem's recurrence links, proposed ones first."""
    services = services_of(request)
    await services.quick(services.store.get_postmortem, postmortem_id)  # 404 when unknown
    found = await services.quick(recurrences_of, services.store.engine, postmortem_id)
    return [RecurrencePublic.of(r) for r in found]


@router.post(
    "/postmortems/{postmortem_id}/recurrences/propose", response_model=list[RecurrencePublic]
)
def propose_recurrences(
    postmortem_id: Ident, request: Request, _p: Reviewer
) -> list[RecurrencePublic]:
    """Search for past postmortems of the same failure again (new ones are added; decided
    ones stay decided)."""
    services = services_of(request)
    services.propose_recurrences(postmortem_id)
    return [RecurrencePublic.of(r) for r in recurrences_of(services.store.engine, postmortem_id)]


@router.post(
    "/postmortems/{postmortem_id}/recurrences/{past_postmortem_id}",
    response_model=RecurrencePublic,
)
def decide_recurrence(
    postmortem_id: Ident,
    past_postmortem_id: Ident,
    body: Decision,
    request: Request,
    principal: Reviewer,
) -> RecurrencePublic:
    """Confirm or dismiss a recurrence. Confirming records the past postmortem's action items
    still open (open or in progress): the fix promised last time had not landed. Either side
    is flagged then."""
    services = services_of(request)
    confirm = body.decision == "confirm"
    found = services.decide_recurrence(postmortem_id, past_postmortem_id, confirm, principal.name)
    return RecurrencePublic.of(found)
