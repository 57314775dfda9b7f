"""Recurrences on the postmortem page: the links to earlier postmortems of the same failure
(and from later ones), a reviewer's confirm or dismiss, and looking for them again.

Titles, reasons and the still-open action items are shown redacted (postmortems imported as
written may hold secrets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse

from api.services import Services
from api.web import views
from api.web.pages.base import Csrf, Viewer, check, services_of
from rca.errors import NotFound
from rca.store.keys import Role
from rca.store.recurrences import Recurrence, recurrences_of

router = APIRouter(prefix="/ui", include_in_schema=False)
Ident = Annotated[str, Path(max_length=128)]


@dataclass(frozen=True)
class RecurrenceRow:
    """One link as the postmortem page lists it."""

    link: Recurrence
    earlier: bool
    """The other postmortem is the earlier one (this one may repeat it)."""
    other_id: str
    other_title: str
    open_actions: list[str]
    reasons: list[str]


def recurrence_rows(services: Services, postmortem_id: str) -> list[RecurrenceRow]:
    """The postmortem's links, proposed first, with the other postmortem's title."""
    redactor = views.redactor_of(services)
    rows = []
    for link in recurrences_of(services.store.engine, postmortem_id):
        earlier = link.postmortem_id == postmortem_id
        other = link.past_postmortem_id if earlier else link.postmortem_id
        try:
            title = services.store.get_postmortem(other).postmortem.title
        except NotFound:  # pragma: no cover - links are only made between stored ones
            title = other
        rows.append(
            RecurrenceRow(
                link,
                earlier,
                other,
                redactor.redact(title),
                [redactor.redact(a) for a in link.open_actions],
                [redactor.redact(r) for r in link.reasons],
            )
        )
    return rows


def _back(postmortem_id: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/postmortems/{postmortem_id}#recurrences", status_code=303)


@router.post("/postmortems/{postmortem_id}/recurrences/propose")
def propose(
    postmortem_id: Ident, request: Request, session: Viewer, csrf: Csrf
) -> RedirectResponse:
    """Look for earlier postmortems of the same failure again."""
    check(session, csrf, Role.REVIEWER)
    services_of(request).propose_recurrences(postmortem_id)
    return _back(postmortem_id)


@router.post("/postmortems/{postmortem_id}/recurrences/{past_postmortem_id}")
def decide(
    postmortem_id: Ident,
    past_postmortem_id: Ident,
    request: Request,
    session: Viewer,
    csrf: Csrf,
    decision: Annotated[Literal["confirm", "dismiss"], Form()],
    back: Annotated[str | None, Form(max_length=128)] = None,
) -> RedirectResponse:
    """Confirm or dismiss a link; back to the page it was decided on (either postmortem)."""
    check(session, csrf, Role.REVIEWER)
    services = services_of(request)
    services.decide_recurrence(
        postmortem_id, past_postmortem_id, decision == "confirm", session.principal.name
    )
    return _back(back if back in (postmortem_id, past_postmortem_id) else postmortem_id)
