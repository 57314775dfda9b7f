"""rca's memory for AI assistants: an MCP server (the official `mcp` SDK) with five tools.

`search_similar_incidents`, `get_postmortem`, `list_open_action_items`, `request_draft` and
`get_draft` let an agent (HolmesGPT, an IDE assistant) ask "have we seen this before?" of the
team's own postmortems. They are served two ways:

- HTTP: `install(app)` adds `/mcp` to the app (streamable HTTP, stateless, JSON answers, so any
  server process of `rca serve --workers N` can answer any request). `AuthenticateFirst` has
  already required `Authorization: Bearer <key>` (401 otherwise); the endpoint checks the key's
  role, and the tools act as that key: a draft requested here counts in its share of the queue.
  The SDK's DNS-rebinding check is off: the key is the protection (a web page cannot send it).
- stdio: `rca mcp` (`api.cli.mcp`) on the configured data directory, acting as `STDIO` (an
  engineer named "mcp-stdio"): whoever can start it can read the data directory anyway.

What a tool returns is JSON with an output schema, in the JSON API's shapes, and redacted as
the similar search and the list pages show text: search results by the search itself, action
items as the board shows them, a postmortem as the index holds it (an assistant's model may be
a hosted one; nothing unredacted goes to a model). An answer is at most `MAX_ANSWER_CHARS`
characters of JSON: lists are cut to fit (said in the answer), a single record too large is
refused with where to read it whole. Errors rca raises on purpose (not found, invalid, busy)
become tool errors with their message; anything else is the SDK's generic tool error, with
the traceback in the server's log only.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, FastAPI, HTTPException, Request
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.auth import require
from api.problems import problem
from api.schemas import MAX_PAGE, DraftJobPublic, Page, decode_cursor, encode_cursor
from api.schemas_postmortems import ActionItemPublic, PostmortemPublic
from api.services import Services
from api.web.views import redactor_of, shown_actions
from rca.domain import ActionStatus
from rca.domain.similar import SearchResult
from rca.errors import InvalidArgument, RcaError
from rca.redaction import PlaceholderTable, redact_postmortem
from rca.store import with_statuses
from rca.store.keys import Principal, Role

PATH = "/mcp"
"""Where `install` serves the tools over HTTP."""
STDIO = Principal(key_id="mcp-stdio", name="mcp-stdio", role=Role.ENGINEER)
"""Who `rca mcp` acts as: the local user who started it."""
MAX_ANSWER_CHARS = 100_000
"""The most characters of JSON one tool answer carries (an agent reads it into its context)."""
MAX_QUERY_CHARS = 4_000
"""The longest search text, as `GET /v1/search/similar` takes."""
MAX_K = 50
INSTRUCTIONS = (
    "rca holds this team's incident history: reviewed postmortems with root causes, causal "
    "chains and action items. Before diagnosing a new incident, search_similar_incidents with "
    "its symptoms (error messages, services, alerts) to find similar past ones; read the best "
    "hits with get_postmortem. request_draft queues a draft analysis of a stored incident; "
    "poll get_draft until its status is succeeded. Text is redacted (secrets, personal data)."
)
_CALLER = "rca.mcp.caller"
"""Where the endpoint leaves the authenticated principal in the request's scope."""
_ENGINEER = require(Role.ENGINEER)
_READS = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
_WRITES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False)
_OPEN = (ActionStatus.OPEN, ActionStatus.IN_PROGRESS)

Ident = Annotated[str, Field(min_length=1, max_length=128)]
SearchText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="What happened: symptoms, error messages, affected services, alerts.",
    ),
]
Answer = TypeVar("Answer", bound=BaseModel)


class RcaTools:
    """The tools, on one `Services`; `local` is the caller when a call has no HTTP request."""

    def __init__(self, services: Services, local: Principal | None = None) -> None:
        self.services = services
        self.local = local

    def search_similar_incidents(
        self,
        text: SearchText,
        ctx: Context[Any, Any],
        k: Annotated[int, Field(ge=1, le=MAX_K, description="How many hits.")] = 5,
    ) -> SearchResult:
        """Past postmortems most similar to a description of an incident, best first, with the
        sections that matched and why. The way to ask "have we seen this before?"."""
        self._caller(ctx)
        with _tool_errors():
            result = self.services.retrieval.search.search(text, k=k)
        trimmed, left_out = _trimmed(result, "hits")
        if left_out:
            note = f"{left_out} more hits left out to keep the answer short; ask for fewer"
            trimmed = trimmed.model_copy(update={"notes": [*trimmed.notes, note]})
        return trimmed

    def get_postmortem(self, postmortem_id: Ident, ctx: Context[Any, Any]) -> PostmortemPublic:
        """A postmortem's latest revision: summary, impact, root causes, causal chain,
        contributing factors, timeline, lessons, and action items with their current status."""
        self._caller(ctx)
        store = self.services.store
        with _tool_errors():
            stored = store.get_postmortem(postmortem_id)
            shown = redact_postmortem(
                stored.postmortem, redactor_of(self.services), PlaceholderTable()
            )
            rows = with_statuses(shown, store.action_statuses(postmortem_id))
        answer = PostmortemPublic.of(replace(stored, postmortem=shown), rows)
        return _whole(answer, f"GET /v1/postmortems/{postmortem_id}/export")

    def list_open_action_items(
        self,
        ctx: Context[Any, Any],
        owner: Annotated[
            str | None,
            Field(min_length=1, max_length=100, description="Only this owner's (any case)."),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
        cursor: Annotated[
            str | None, Field(max_length=400, description="The previous page's next_cursor.")
        ] = None,
    ) -> Page[ActionItemPublic]:
        """Follow-up actions of past postmortems that are still open or in progress, by
        postmortem; pass `next_cursor` back as `cursor` for the next page."""
        self._caller(ctx)
        with _tool_errors():
            after = _action_cursor(cursor) if cursor is not None else None
            rows = self.services.store.action_item_page(
                limit + 1, after, statuses=_OPEN, owner=owner
            )
            shown = shown_actions(self.services, rows[:limit])
        # Cut to fit with room for the longest cursor (an id of 128 characters), set after.
        room = encode_cursor("x" * 128, 999_999)
        page = Page[ActionItemPublic](
            items=[ActionItemPublic.of(r) for r in shown], next_cursor=room
        )
        trimmed, left_out = _trimmed(page, "items")
        trimmed = trimmed.model_copy(update={"next_cursor": None})
        if left_out or len(rows) > limit:
            last = shown[len(trimmed.items) - 1] if trimmed.items else None
            if last is not None:
                trimmed = trimmed.model_copy(
                    update={"next_cursor": encode_cursor(last.postmortem_id, last.item)}
                )
        return trimmed

    def request_draft(self, incident_id: Ident, ctx: Context[Any, Any]) -> DraftJobPublic:
        """Queue a draft root-cause analysis of a stored incident with the configured model;
        read it with get_draft (status queued, running, then succeeded or failed)."""
        caller = self._caller(ctx)
        with _tool_errors():
            model = self.services.check_model(None)
            job = self.services.submit_draft(incident_id, model, caller)
        return DraftJobPublic.of(job)

    def get_draft(self, draft_id: Ident, ctx: Context[Any, Any]) -> DraftJobPublic:
        """A draft's status and progress, and the draft once it has succeeded."""
        self._caller(ctx)
        with _tool_errors():
            job = self.services.jobs.get(draft_id)
        answer = DraftJobPublic.of(job)
        if answer.draft is not None:
            answer = answer.model_copy(update={"partial": None})
        return _whole(answer, f"GET /v1/drafts/{draft_id}")

    def _caller(self, ctx: Context[Any, Any]) -> Principal:
        """The principal calling: the HTTP request's, else the local one."""
        scope = getattr(ctx.request_context.request, "scope", None)
        found = scope.get(_CALLER) if isinstance(scope, dict) else None
        caller = found if isinstance(found, Principal) else self.local
        if caller is None:
            raise ToolError("no authenticated caller")
        if not caller.role.allows(Role.ENGINEER):
            raise ToolError(f"this needs the {Role.ENGINEER.value} role")
        return caller


def build_server(services: Services, local: Principal | None = None) -> MCPServer:
    """The MCP server with rca's tools on `services`; `local` acts for calls without an HTTP
    request (stdio)."""
    tools = RcaTools(services, local)
    server = _without_logging_setup(lambda: MCPServer("rca", instructions=INSTRUCTIONS))
    server.add_tool(tools.search_similar_incidents, annotations=_READS)
    server.add_tool(tools.get_postmortem, annotations=_READS)
    server.add_tool(tools.list_open_action_items, annotations=_READS)
    server.add_tool(tools.request_draft, annotations=_WRITES)
    server.add_tool(tools.get_draft, annotations=_READS)
    return server


def install(app: FastAPI) -> None:
    """Serve the tools at `PATH` on `app`, on the app's services, for as long as the app runs
    (the SDK's session manager runs inside the app's lifespan, after the services opened)."""
    endpoint = _Endpoint()

    @asynccontextmanager
    async def running(app: FastAPI) -> AsyncIterator[None]:
        server = build_server(app.state.services)
        api = app.state.services.settings.api
        server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            max_request_body_size=api.max_body_bytes,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        endpoint.manager = server.session_manager
        try:
            async with endpoint.manager.run():
                yield
        finally:
            endpoint.manager = None

    router = APIRouter(lifespan=running)
    router.routes.append(Route(PATH, endpoint, include_in_schema=False))
    app.include_router(router)


class _Endpoint:
    """ASGI app at `PATH`: the caller's role checked, then the SDK's session manager."""

    def __init__(self) -> None:
        self.manager: StreamableHTTPSessionManager | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            principal = await _ENGINEER(Request(scope))
        except HTTPException as err:
            refused = problem(err.status_code, str(err.detail), headers=dict(err.headers or {}))
            await refused(scope, receive, send)
            return
        if self.manager is None:  # the app is starting or stopping
            await problem(503, "the MCP endpoint is not running")(scope, receive, send)
            return
        scope[_CALLER] = principal
        await self.manager.handle_request(scope, receive, send)


@contextmanager
def _tool_errors() -> Iterator[None]:
    """rca's errors as tool errors with the same message (it is safe to show)."""
    try:
        yield
    except RcaError as err:
        raise ToolError(str(err)) from err


def _chars(answer: BaseModel) -> int:
    return len(answer.model_dump_json())


def _trimmed(answer: Answer, field: str) -> tuple[Answer, int]:
    """`answer` with items dropped from the end of its list `field` until it fits in
    `MAX_ANSWER_CHARS`; how many were dropped."""
    items = list(getattr(answer, field))
    kept = len(items)
    while kept and _chars(answer.model_copy(update={field: items[:kept]})) > MAX_ANSWER_CHARS:
        kept -= 1
    return answer.model_copy(update={field: items[:kept]}), len(items) - kept


def _whole(answer: Answer, where: str) -> Answer:
    """`answer` if it fits in `MAX_ANSWER_CHARS`, else a tool error naming where to read it."""
    size = _chars(answer)
    if size > MAX_ANSWER_CHARS:
        raise ToolError(
            f"the answer is {size} characters, more than the {MAX_ANSWER_CHARS} a tool answer "
            f"carries; read it whole with {where}"
        )
    return answer


def _action_cursor(cursor: str) -> tuple[str, int]:
    """The (postmortem id, item) an action-item cursor holds, as `GET /v1/action-items`."""
    ident, item = decode_cursor(cursor, 2)
    if not item.isdigit() or len(item) > 9:
        raise InvalidArgument("malformed cursor")
    return ident, int(item)


def _without_logging_setup(make: Callable[[], MCPServer]) -> MCPServer:
    """`make()`, undoing what it did to the root logger: the SDK's server constructor calls
    `logging.basicConfig` (a rich handler at INFO), and rca leaves logging to its entry points."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return make()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
