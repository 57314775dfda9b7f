"""Every error as `application/problem+json` (RFC 9457), mapped from rca's errors once.

No stack trace and no exception text of unexpected errors reaches a client: a 500 says only
that something failed and carries an id to find it in the server log. An unexpected error is
answered by `ContainErrors`, inside the app, so the connection stays usable: left to Starlette's
outermost layer, the error is re-raised after the 500 is sent, and uvicorn then closes the
connection (a keep-alive client's next request on it fails too).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rca.errors import (
    Busy,
    ConfigurationError,
    Conflict,
    IndexLocked,
    IndexUnavailable,
    InvalidArgument,
    InvalidInput,
    InvalidQuery,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    RcaError,
    StoreUnavailable,
)
from rca.store.idempotency import KeyReused
from rca.store.reconnect import connection_lost

PROBLEM = "application/problem+json"
log = logging.getLogger("rca.api")

_STATUS: tuple[tuple[type[RcaError], int, str], ...] = (
    (InvalidInput, 422, "invalid-input"),
    (KeyReused, 422, "idempotency-key-reused"),
    (InvalidArgument, 400, "invalid-argument"),
    (InvalidQuery, 400, "invalid-query"),
    (NotFound, 404, "not-found"),
    (PreconditionFailed, 412, "precondition-failed"),
    (PreconditionRequired, 428, "precondition-required"),
    (Conflict, 409, "conflict"),
    (Busy, 429, "busy"),
    (IndexLocked, 503, "index-locked"),
    (IndexUnavailable, 503, "index-unavailable"),
    (StoreUnavailable, 503, "store-unavailable"),
    (ConfigurationError, 503, "misconfigured"),
)
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem response."""
    body: dict[str, Any] = {
        "type": f"https://rca.dev/problems/{kind or status}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


HtmlErrors = Callable[[Request, int, str, str], Response]
"""Renders an error as a web page: request, status, title, detail."""


def _answer(
    request: Request,
    status: int,
    detail: str,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem, or for the web UI's pages (under /ui/) an HTML error page."""
    pages: HtmlErrors | None = getattr(request.app.state, "html_errors", None)
    if pages is not None and request.url.path.startswith("/ui/"):
        page = pages(request, status, _TITLES.get(status, "Error"), detail)
        page.headers.update(headers or {})
        return page
    return problem(status, detail, kind, headers, **extra)


async def unexpected(request: Request, err: Exception) -> Response:
    """A 500 that says only that something failed, with an id to find it in the server log;
    a database connection cut under the request (the database restarted, an operator ended
    the session) is a 503 to send again: the pool has let go of it, the next request gets a
    new one."""
    if connection_lost(err):
        log.warning("database connection cut during %s %s", request.method, request.url.path)
        return _answer(
            request,
            503,
            "the database connection was cut while handling the request; send it again",
            "store-unavailable",
            {"Retry-After": "1"},
        )
    incident = secrets.token_hex(6)
    log.error("unhandled error %s: %s", incident, type(err).__name__, exc_info=err)
    return _answer(request, 500, f"the server failed to handle the request (error id {incident})")


class ContainErrors:
    """ASGI middleware answering an unexpected error with a 500 itself and not raising it on,
    so the server keeps the connection open. (An error after the response has started cannot
    be answered any more; it goes on to the server, which must close the connection.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as err:
            if started:
                raise
            response = await unexpected(Request(scope), err)
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the handlers, and `ContainErrors` as the innermost middleware (added first)."""
    app.add_middleware(ContainErrors)

    @app.exception_handler(RcaError)
    async def rca_error(_request: Request, err: RcaError) -> Response:
        for kind, status, name in _STATUS:
            if isinstance(err, kind):
                extra: dict[str, Any] = {}
                headers: dict[str, str] = {}
                if isinstance(err, InvalidInput):
                    extra["errors"] = [
                        {"location": p.location, "reason": p.reason} for p in err.problems
                    ]
                if (
                    isinstance(err, PreconditionFailed | Conflict)
                    and getattr(err, "current_version", None) is not None
                ):
                    extra["current_version"] = err.current_version
                    headers["ETag"] = f'"{err.current_version}"'
                if isinstance(err, Busy):
                    headers["Retry-After"] = str(err.retry_after_s)
                if status == 503:
                    headers.setdefault("Retry-After", "30")
                return _answer(_request, status, str(err), name, headers or None, **extra)
        return await unexpected(_request, err)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, err: RequestValidationError) -> Response:
        errors = [
            {
                "location": ".".join(str(p) for p in e.get("loc", ())),
                "reason": str(e.get("msg", "invalid")),
            }
            for e in err.errors()[:50]
        ]
        return _answer(
            _request,
            422,
            "the request does not match the schema",
            "invalid-request",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, err: StarletteHTTPException) -> Response:
        headers = dict(err.headers or {})
        detail = (
            err.detail if isinstance(err.detail, str) else _TITLES.get(err.status_code, "Error")
        )
        return _answer(_request, err.status_code, detail, None, headers or None)

    # What escapes ContainErrors (an error in an outer middleware) still gets a problem.
    app.add_exception_handler(Exception, unexpected)
