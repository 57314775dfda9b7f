"""The UI's pages: sign-in, incidents, draft review, postmortems (and their recurrences),
action items, insights, eval reports, outbound webhooks (admins).

Each page reads through the same services as the JSON API. Forms post back here (303 to the
page after success, so a reload never repeats an action); a stale review answers the draft
page again with status 412 and the reviewer's edit kept, so it can be redone.

`base` holds what they share (templates, the error page, the session and CSRF checks); the other
modules hold the routes of one area each, all under /ui and kept out of the OpenAPI schema.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.web.pages import (
    drafts,
    eval_reports,
    incidents,
    insights,
    postmortems,
    recurrences,
    session,
    webhooks,
)
from api.web.pages.base import error_page

ROUTERS: tuple[APIRouter, ...] = (
    session.router,
    incidents.router,
    drafts.router,
    postmortems.router,
    recurrences.router,
    eval_reports.router,
    insights.router,
    webhooks.router,
)

__all__ = ["ROUTERS", "error_page"]
