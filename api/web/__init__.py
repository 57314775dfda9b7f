"""The reviewer web UI: server-rendered pages under /ui/, served by the same app.

Jinja templates with autoescaping; the only script and stylesheet are files of this package
served from /ui/static/ (no CDN); a strict Content-Security-Policy allows nothing else, so even
text that escaped escaping could not run. Sign-in turns an API key into a session cookie
(HttpOnly, SameSite=Strict); every form carries the session's CSRF token.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.web import pages

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'self'; "
    "base-uri 'none'"
)


class PageHeaders:
    """Security headers on every /ui/ response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/ui"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = {
                    b"content-security-policy": CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"same-origin",
                    b"x-frame-options": b"SAMEORIGIN",
                    b"cache-control": b"no-store",
                }
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI) -> None:
    """Add the pages, their static files, HTML error pages and the security headers."""
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    for router in pages.ROUTERS:
        app.include_router(router)
    app.state.html_errors = pages.error_page
    app.add_middleware(PageHeaders)
