"""What every page shares: the Jinja templates and `render`, the HTML error page, the
signed-in session as a dependency (`Viewer`), and the CSRF and role check of every form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.auth import SESSION_COOKIE
from api.services import Services
from api.web import views
from rca.domain import ActionKind, FactorCategory, Priority
from rca.store.keys import Role
from rca.store.sessions import Session

COOKIE = SESSION_COOKIE
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "templates"),
    autoescape=select_autoescape(["html"], default=True),
    undefined=StrictUndefined,
    finalize=views.shown,
)
TEMPLATES.filters["when"] = views.when
TEMPLATES.filters["pct"] = views.pct
TEMPLATES.globals.update(
    CATEGORIES=[c.value for c in FactorCategory],
    ACTION_KINDS=[k.value for k in ActionKind],
    PRIORITIES=[p.value for p in Priority],
)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def render(
    request: Request, name: str, session: Session | None, status: int = 200, **context: Any
) -> HTMLResponse:
    """A page from its template; the session gives the nav, role and CSRF token."""
    html = TEMPLATES.get_template(name).render(
        session=session,
        can_review=session is not None and session.principal.role.allows(Role.REVIEWER),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    """The HTML form of every error under /ui/ (installed as the app's `html_errors`)."""
    if status == 401:
        target = quote(request.url.path, safe="/")
        return RedirectResponse(f"/ui/sign-in?next={target}", status_code=303)
    session = getattr(request.state, "web_session", None)
    return render(request, "error.html", session, status, title=title, detail=detail)


async def signed_in(request: Request) -> Session:
    """The browser's session, or a redirect to sign in."""
    services = services_of(request)
    session = await services.quick(services.sessions.resolve, request.cookies.get(COOKIE))
    if session is None:
        raise HTTPException(401, "sign in first")
    request.state.web_session = session
    return session


Viewer = Annotated[Session, Depends(signed_in)]
Csrf = Annotated[str, Form(max_length=100)]


def check(session: Session, csrf: str, role: Role = Role.ENGINEER) -> None:
    """A form may act: its CSRF token is the session's and the signed-in role allows it."""
    if not session.csrf_ok(csrf):
        raise HTTPException(403, "the form is stale or not from this site; reload the page")
    if not session.principal.role.allows(role):
        raise HTTPException(403, f"this needs the {role.value} role")
