"""Signing in and out: an API key becomes a session cookie (HttpOnly, SameSite=Strict, path
/ui); signing out ends the session. The bare /ui/ leads to the incidents.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.web.pages.base import COOKIE, Csrf, Viewer, check, render, services_of

router = APIRouter(prefix="/ui", include_in_schema=False)


def _same_origin(request: Request) -> None:
    """Sign-in has no session yet to carry a CSRF token: refuse posts from other sites."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        raise HTTPException(403, "sign-in must come from this site")


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return "/ui/incidents"


@router.get("", response_class=RedirectResponse)
@router.get("/", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/ui/incidents", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "sign_in.html", None, next=_safe_next(next), error=None)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    api_key: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "/ui/incidents",
) -> Response:
    _same_origin(request)
    services = services_of(request)
    principal = services.keys.authenticate(api_key.strip())
    if principal is None:
        return render(
            request,
            "sign_in.html",
            None,
            401,
            next=_safe_next(next),
            error="That key is unknown, revoked or expired.",
        )
    token, _ = services.sessions.start(principal)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(services.sessions.lifetime.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/ui",
    )
    return response


@router.post("/sign-out")
def sign_out(request: Request, session: Viewer, csrf: Csrf) -> RedirectResponse:
    check(session, csrf)
    services_of(request).sessions.end(request.cookies.get(COOKIE))
    response = RedirectResponse("/ui/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response
