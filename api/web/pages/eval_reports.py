"""The eval reports: a page about the latest report, and the report itself for a sandboxed frame."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from api.web import views
from api.web.pages.base import Viewer, render, services_of

router = APIRouter(prefix="/ui", include_in_schema=False)
REPORTS_LABEL = "<data dir>/eval-reports"


@router.get("/evals", response_class=HTMLResponse)
def evals_page(request: Request, session: Viewer) -> HTMLResponse:
    settings = services_of(request).settings
    report = views.latest_report(settings)
    # Named relative to the data directory: the page never shows where the server's files are.
    shown = report.relative_to(views.reports_dir(settings)).as_posix() if report else None
    return render(request, "evals.html", session, report=shown, reports_dir=REPORTS_LABEL)


@router.get("/evals/report.html", response_class=HTMLResponse)
def eval_report(request: Request, _session: Viewer) -> Response:
    report = views.latest_report(services_of(request).settings)
    if report is None:
        raise HTTPException(404, "no eval report yet")
    # Our own generated file, shown in a sandboxed frame: no script runs in it either way.
    return HTMLResponse(
        report.read_text(encoding="utf-8"),
        headers={
            "Content-Security-Policy": (
                "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
            )
        },
    )
