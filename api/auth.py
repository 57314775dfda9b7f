"""Authentication and roles: `Authorization: Bearer <key>` only; deny by default.

`AuthenticateFirst` authenticates every request from its headers before anything reads its
body (a large upload, malformed JSON): everything but `PUBLIC_ROUTES` and the web UI needs a
valid key (401 otherwise, with `WWW-Authenticate: Bearer`, and the connection closed rather
than the body read); a web UI form needs a live session (else the sign-in page). That covers
the OpenAPI schema and unknown paths too. Every route then declares the least role it needs
with `Depends(require(Role.X))` (403 for a role too low); a route without it is refused by a
test that walks the app's routes. The key lookup is one indexed read, done on the event loop
with SQLite (`Services.quick`): a thread hop per request costs more than the read under load.

Webhooks from other tools (`/v1/hooks/...`) carry no API key: Alertmanager's bearer token is an
integration token, checked here before the body is read; PagerDuty and GitHub sign the body,
checked by their routes (`api.routes_hooks`) once it is read, within the body limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import HtmlErrors, problem
from api.services import Services
from rca.store.integrations import IntegrationInfo, IntegrationKind
from rca.store.keys import Principal, Role

PUBLIC_ROUTES = frozenset({"/healthz", "/readyz"})
"""Routes that need no API key (liveness and readiness probes)."""
HOOKS = "/v1/hooks/"
"""Webhooks from other tools: authenticated by the integration's own credential, not a key."""
TOKEN_HOOKS = frozenset({"/v1/hooks/alertmanager"})
"""Webhooks that carry a bearer token (checked before the body is read); the others are signed
(checked by their route, which needs the body)."""
_INTEGRATION = "rca.integration"
SIGN_IN = "/ui/sign-in"
SESSION_COOKIE = "rca_session"
_PRINCIPAL = "rca.principal"
"""Where `AuthenticateFirst` leaves the authenticated principal in the request's scope."""
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rca"'}


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers=_CHALLENGE)


async def _authenticate(services: Services, header: str | None) -> Principal:
    """The principal of an `Authorization` header, or HTTPException 401."""
    if not header:
        raise _unauthorized("an API key is required: Authorization: Bearer <key>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("use Authorization: Bearer <key>")
    principal: Principal | None = await services.quick(services.keys.authenticate, token.strip())
    if principal is None:
        raise _unauthorized("the API key is unknown, revoked or expired")
    return principal


def integration_of(request: Request) -> IntegrationInfo:
    """The integration `AuthenticateFirst` found for a token-authenticated webhook."""
    found: IntegrationInfo | None = request.scope.get(_INTEGRATION)
    if found is None:  # an app without `AuthenticateFirst`
        raise HTTPException(401, "an integration token is required", headers=_CHALLENGE)
    return found


integration_of.required_role = "integration"  # type: ignore[attr-defined]


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the calling principal, if its role includes `role`."""

    async def dependency(request: Request) -> Principal:
        principal: Principal | None = request.scope.get(_PRINCIPAL)
        if principal is None:  # an app without `AuthenticateFirst`
            header = request.headers.get("authorization")
            principal = await _authenticate(request.app.state.services, header)
        if not principal.role.allows(role):
            raise HTTPException(403, f"this needs the {role.value} role")
        request.state.principal = principal
        return principal

    dependency.required_role = role  # type: ignore[attr-defined]
    return dependency


class AuthenticateFirst:
    """ASGI middleware: authenticate a request from its headers before its body is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        needs = _needs(scope) if scope["type"] == "http" else None
        if needs is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        services: Services = scope["app"].state.services
        close = {"Connection": "close"} if _has_body(scope) else {}
        if needs == "integration":
            scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
            found = None
            if scheme.lower() == "bearer" and presented.strip():
                found = await services.quick(
                    services.integrations.authenticate,
                    IntegrationKind.ALERTMANAGER,
                    presented.strip(),
                )
            if found is None:
                detail = "an Alertmanager integration token is required: Authorization: Bearer"
                refused = problem(401, detail, headers={**_CHALLENGE, **close})
                await refused(scope, receive, send)
                return
            scope[_INTEGRATION] = found
        elif needs == "session":
            token = request.cookies.get(SESSION_COOKIE)
            pages: HtmlErrors | None = getattr(scope["app"].state, "html_errors", None)
            if pages is not None and await services.quick(services.sessions.resolve, token) is None:
                page = pages(request, 401, "Unauthorized", "sign in first")
                page.headers.update(close)
                await page(scope, receive, send)
                return
        else:
            try:
                scope[_PRINCIPAL] = await _authenticate(
                    services, request.headers.get("authorization")
                )
            except HTTPException as err:
                refused = problem(401, str(err.detail), headers={**_CHALLENGE, **close})
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _needs(scope: Scope) -> str | None:
    """What a request must show before its body is read: `key`, `session` or nothing."""
    path: str = scope["path"]
    if path in PUBLIC_ROUTES:
        return None
    if path.startswith(HOOKS):
        return "integration" if path in TOKEN_HOOKS else None
    if path == "/ui" or path.startswith("/ui/"):
        # Pages check their session themselves (and redirect to sign in); forms carry bodies.
        reads = scope["method"] in ("GET", "HEAD", "OPTIONS")
        return None if reads or path == SIGN_IN else "session"
    return "key"


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
