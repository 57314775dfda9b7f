"""Authentication and roles: `Authorization: Bearer <key>` only; deny by default.

Every route declares the least role it needs with `Depends(require(Role.X))`; a route without
it is refused by a test that walks the app's routes. 401 for a missing, malformed, unknown,
revoked or expired key (with `WWW-Authenticate: Bearer`), 403 for a role too low. The key
lookup is one indexed read, done on the event loop with SQLite (`Services.quick`): a thread
hop per request costs more than the read under load.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request

from rca.store.keys import Principal, Role


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="rca"'})


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the calling principal, if its role includes `role`."""

    async def dependency(request: Request) -> Principal:
        header = request.headers.get("authorization")
        if not header:
            raise _unauthorized("an API key is required: Authorization: Bearer <key>")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("use Authorization: Bearer <key>")
        services = request.app.state.services
        key = token.strip()
        principal: Principal | None = await services.quick(services.keys.authenticate, key)
        if principal is None:
            raise _unauthorized("the API key is unknown, revoked or expired")
        if not principal.role.allows(role):
            raise HTTPException(403, f"this needs the {role.value} role")
        request.state.principal = principal
        return principal

    dependency.required_role = role  # type: ignore[attr-defined]
    return dependency
