"""`GET /v1/digest`: what a window brought (new incidents, finalized postmortems, new and
overdue action items, recurrences) as JSON, Markdown or a standalone HTML page; the same digest
as `rca digest` and the `digest.ready` event."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.routes_incidents import services_of
from rca.insights import digest_render
from rca.insights.digest import DEFAULT_LIMIT, MAX_LIMIT, Digest, build
from rca.insights.digest_window import window
from rca.redaction import Redactor
from rca.store.keys import Principal, Role

router = APIRouter(prefix="/v1", tags=["insights"])
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]

HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"
"""The HTML page may use its own inline style and nothing else: no script, nothing loaded."""


class DigestFormat(StrEnum):
    """What `GET /v1/digest` answers with."""

    json = "json"
    md = "md"
    html = "html"


@router.get(
    "/digest",
    response_model=Digest,
    responses={
        200: {
            "content": {"text/markdown": {}, "text/html": {}},
            "description": "The digest (JSON, or Markdown / HTML with `format`).",
        }
    },
)
async def get_digest(
    request: Request,
    _principal: Engineer,
    since: Annotated[str, Query(max_length=64)] = "7d",
    until: Annotated[str | None, Query(max_length=64)] = None,
    output: Annotated[DigestFormat, Query(alias="format")] = DigestFormat.json,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Digest | Response:
    """What [since, until) brought: incidents that started or were first recorded in it,
    postmortems finalized or first imported in it, action items that first appeared in it,
    the ones overdue today, recurrences proposed or confirmed in it; each list the most
    pressing first, up to `limit`, with its total. `since` and `until` are durations back from
    now (`24h`, `7d`, `2w`), dates (UTC midnight) or times with an offset; `until` defaults to
    now, the window to at most 366 days. Text is redacted."""
    services = services_of(request)
    now = datetime.now(UTC)
    start, end = window(since, until, now)
    redactor = Redactor(ip_addresses=services.settings.redaction.ip_addresses)
    found = await run_in_threadpool(
        build, services.store, start, end, now=now, limit=limit, redactor=redactor
    )
    if output is DigestFormat.md:
        return Response(digest_render.markdown(found), media_type="text/markdown; charset=utf-8")
    if output is DigestFormat.html:
        return Response(
            digest_render.page(found),
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": HTML_CSP},
        )
    return found
