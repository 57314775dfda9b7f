"""rca for AI assistants: the MCP tools, driven by the `mcp` SDK's own client, over streamable
HTTP against the app on a real uvicorn server (`/mcp`, API key required) and over stdio
against `rca mcp` in a subprocess."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from api import mcp_server
from api.app import create_app
from api.services import Services
from api.worker import DraftWorker
from rca.config import Settings
from rca.domain import ActionStatus, Incident, Postmortem
from rca.formats.importer import import_paths
from rca.llm import ScriptedModel, register_provider
from rca.store import Store
from rca.store.keys import Role
from rca.testing import fake_analyst
from tests import processes
from tests.api.module_backend import (  # fixtures: pytest finds them in the module
    PER_MODULE,
    ModuleBackend,
    module_backend_fixture,  # noqa: F401
    own_database_fixture,  # noqa: F401
)
from tests.api.support import INCIDENT_FILE, ROOT, api_settings, served
from tests.factories import postmortem_data
from tests.support import CANARIES

# The module's server is built once per back end (`module_backend`), not once per test.
pytestmark = PER_MODULE

EXAMPLES = ROOT / "examples" / "postmortems"
CHECKOUT = "pm-2023-01-checkout-bad-deploy"
DNS = "pm-2023-06-internal-dns-outage"
LEAKY = "pm-leaky-actions"
SECRET = CANARIES[0][2]
TOOLS = {
    "search_similar_incidents",
    "get_postmortem",
    "list_open_action_items",
    "request_draft",
    "get_draft",
}
T = TypeVar("T")


@dataclass
class Site:
    """The app on uvicorn with two example postmortems, one with a secret, and an incident."""

    url: str
    services: Services
    keys: dict[Role, str]
    incident_id: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, module_backend: ModuleBackend) -> Iterator[Site]:
    register_provider("fake", ScriptedModel(reply=fake_analyst))
    app = create_app(api_settings(tmp_path_factory.mktemp("mcp")), workers=0)
    with served(app) as url:
        services: Services = app.state.services
        module_backend.holds(services.store.engine)
        keys = {role: services.keys.create(f"mcp {role.value}", role)[0] for role in Role}
        import_paths(services.store, [EXAMPLES / f"{CHECKOUT}.md", EXAMPLES / f"{DNS}.md"], 10**6)
        leaky = postmortem_data(
            id=LEAKY,
            action_items=[{"text": f"Rotate the key: {CANARIES[0][1]}", "kind": "mitigate"}],
        )
        services.store.import_postmortem(Postmortem.model_validate(leaky), "test", "test")
        incident = Incident.model_validate_json(INCIDENT_FILE.read_text())
        services.store.create_incident(incident, "test")
        services.retrieval.indexer.sync()
        yield Site(url, services, keys, incident.id)


@asynccontextmanager
async def connected(
    site: Site, role: Role = Role.ENGINEER, **options: Any
) -> AsyncIterator[Client]:
    """An SDK client session on `/mcp` with the key of `role`."""
    headers = {"Authorization": f"Bearer {site.keys[role]}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        transport = streamable_http_client(f"{site.url}/mcp", http_client=http)
        async with Client(transport, **options) as client:
            yield client


def run(session: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(session)


def call(site: Site, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    """One tool call in its own session."""

    async def session() -> CallToolResult:
        async with connected(site) as client:
            return await client.call_tool(tool, arguments)

    return run(session)


def answer(result: CallToolResult) -> dict[str, Any]:
    """The structured answer of a call that succeeded (the text block holds the same JSON)."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    found: dict[str, Any] = result.structured_content
    assert json.loads(result.content[0].text) == found  # type: ignore[union-attr]
    return found


def error(result: CallToolResult) -> str:
    assert result.is_error
    return result.content[0].text  # type: ignore[union-attr]


# --- the tools over HTTP -------------------------------------------------------------------


def test_an_assistant_lists_the_tools_with_their_schemas(site: Site) -> None:
    async def session() -> Any:
        async with connected(site) as client:
            return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in run(session)}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.output_schema is not None
    search = tools["search_similar_incidents"].input_schema
    assert search["required"] == ["text"]
    assert search["properties"]["text"]["maxLength"] == mcp_server.MAX_QUERY_CHARS
    assert search["properties"]["k"]["maximum"] == mcp_server.MAX_K
    assert tools["get_postmortem"].annotations.read_only_hint is True
    assert tools["request_draft"].annotations.read_only_hint is False


def test_have_we_seen_this_before_finds_the_past_postmortem(site: Site) -> None:
    text = "CoreDNS cache change; service discovery lookups failing cluster-wide"
    found = answer(call(site, "search_similar_incidents", {"text": text, "k": 3}))
    assert found["hits"][0]["postmortem_id"] == DNS
    assert len(found["hits"]) <= 3 and found["hits"][0]["why"]


def test_get_postmortem_returns_it_with_its_action_items(site: Site) -> None:
    shown = answer(call(site, "get_postmortem", {"postmortem_id": CHECKOUT}))
    assert shown["postmortem"]["id"] == CHECKOUT and shown["revision"] == 1
    assert shown["postmortem"]["root_causes"]
    statuses = [item["status"] for item in shown["action_items"]]
    assert statuses == ["done", "done", "in_progress", "open", "wont_do"]


def test_an_unknown_postmortem_is_a_tool_error_and_the_session_goes_on(site: Site) -> None:
    async def session() -> tuple[CallToolResult, CallToolResult]:
        async with connected(site) as client:
            missing = await client.call_tool("get_postmortem", {"postmortem_id": "pm-nope"})
            return missing, await client.call_tool("get_postmortem", {"postmortem_id": DNS})

    missing, found = run(session)
    assert "postmortem 'pm-nope' not found" in error(missing)
    assert answer(found)["postmortem"]["id"] == DNS


def test_open_action_items_are_listed_a_page_at_a_time(site: Site) -> None:
    listed = answer(call(site, "list_open_action_items", {}))
    items = listed["items"]
    assert {item["status"] for item in items} == {"open", "in_progress"}
    mine = [(i["postmortem_id"], i["item"]) for i in items if i["postmortem_id"] == CHECKOUT]
    assert mine == [(CHECKOUT, 2), (CHECKOUT, 3)]
    assert listed["next_cursor"] is None
    sre = answer(call(site, "list_open_action_items", {"owner": "SRE"}))["items"]
    assert [(i["postmortem_id"], i["item"]) for i in sre] == [(CHECKOUT, 2)]
    first = answer(call(site, "list_open_action_items", {"limit": 1}))
    assert first["items"] == items[:1] and first["next_cursor"]
    cursor = first["next_cursor"]
    second = answer(call(site, "list_open_action_items", {"limit": 1, "cursor": cursor}))
    assert second["items"] == items[1:2]
    assert "malformed cursor" in error(call(site, "list_open_action_items", {"cursor": "x"}))


def test_an_item_done_is_no_longer_open(tmp_path: Path, own_database: ModuleBackend) -> None:
    register_provider("fake", ScriptedModel(reply=fake_analyst))
    app = create_app(api_settings(tmp_path), workers=0)
    with served(app) as url:
        services: Services = app.state.services
        own_database.holds(services.store.engine)
        key = services.keys.create("mcp", Role.ENGINEER)[0]
        services.store.import_postmortem(Postmortem.model_validate(postmortem_data()), "t", "t")
        services.store.set_action_status("pm-test-queue-2025", 0, ActionStatus.DONE, "t")
        alone = Site(url, services, {Role.ENGINEER: key}, "")
        items = answer(call(alone, "list_open_action_items", {}))["items"]
    assert [(i["item"], i["status"]) for i in items] == [(1, "open")]


def test_a_draft_requested_by_an_assistant_is_queued_for_its_key(site: Site) -> None:
    queued = answer(call(site, "request_draft", {"incident_id": site.incident_id}))
    assert queued["status"] == "queued" and queued["draft"] is None
    job = site.services.jobs.get(queued["id"])
    engineer = site.services.keys.authenticate(site.keys[Role.ENGINEER])
    assert engineer is not None and job.requested_by == engineer.name
    waiting = answer(call(site, "get_draft", {"draft_id": queued["id"]}))
    assert waiting["status"] == "queued"
    assert DraftWorker(site.services, "t").run_once()
    done = answer(call(site, "get_draft", {"draft_id": queued["id"]}))
    assert done["status"] == "succeeded" and done["draft"]["suggestions"]
    assert done["incident_id"] == site.incident_id


def test_drafts_of_unknown_things_are_tool_errors(site: Site) -> None:
    assert "incident 'inc-nope' not found" in error(
        call(site, "request_draft", {"incident_id": "inc-nope"})
    )
    assert "draft 'draft-nope' not found" in error(
        call(site, "get_draft", {"draft_id": "draft-nope"})
    )


def test_a_full_queue_is_a_tool_error_saying_when_to_retry(site: Site) -> None:
    jobs = site.services.jobs
    jobs.max_queued, before = 0, jobs.max_queued
    try:
        refused = error(call(site, "request_draft", {"incident_id": site.incident_id}))
    finally:
        jobs.max_queued = before
    assert "drafts are waiting, the most the queue holds" in refused


def test_hostile_input_is_refused_with_a_clear_error(site: Site) -> None:
    huge = error(call(site, "search_similar_incidents", {"text": "x" * 1_000_000}))
    assert "at most 4000 characters" in huge and len(huge) < 2_000
    many = error(call(site, "search_similar_incidents", {"text": "dns", "k": 10_000}))
    assert "less than or equal to 50" in many
    assert "should be" in error(call(site, "search_similar_incidents", {"text": "dns", "k": 0}))
    assert error(call(site, "search_similar_incidents", {"text": ""}))
    assert "at most 100 characters" in error(
        call(site, "list_open_action_items", {"owner": "o" * 101, "limit": 1})
    )
    assert "less than or equal to 100" in error(
        call(site, "list_open_action_items", {"limit": 1_000_000})
    )
    assert error(call(site, "get_postmortem", {"postmortem_id": "p" * 10_000}))


def test_answers_are_bounded(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mcp_server, "MAX_ANSWER_CHARS", 3_000)
    found = answer(call(site, "search_similar_incidents", {"text": "outage", "k": 10}))
    assert 0 < len(found["hits"]) < 3 and "left out" in found["notes"][-1]
    assert len(json.dumps(found)) <= 3_000
    refused = error(call(site, "get_postmortem", {"postmortem_id": CHECKOUT}))
    assert f"GET /v1/postmortems/{CHECKOUT}/export" in refused
    monkeypatch.setattr(mcp_server, "MAX_ANSWER_CHARS", 1_000)
    listed = answer(call(site, "list_open_action_items", {"limit": 100}))
    assert 0 < len(listed["items"]) < 5 and len(json.dumps(listed)) <= 1_000
    following = call(site, "list_open_action_items", {"cursor": listed["next_cursor"]})
    assert answer(following)["items"][0] != listed["items"][-1]


def test_text_is_redacted_as_the_list_pages_show_it(site: Site) -> None:
    shown = call(site, "get_postmortem", {"postmortem_id": LEAKY})
    listed = call(site, "list_open_action_items", {"limit": 100})
    found = call(site, "search_similar_incidents", {"text": f"rotate {SECRET}", "k": 10})
    for result in (shown, listed, found):
        assert SECRET not in json.dumps(answer(result))
    assert any(i["postmortem_id"] == LEAKY for i in answer(listed)["items"])
    assert (
        site.services.store.get_postmortem(LEAKY).postmortem.action_items[0].text.endswith(SECRET)
    )


def test_every_role_may_use_the_tools(site: Site) -> None:
    async def session(role: Role) -> CallToolResult:
        async with connected(site, role) as client:
            return await client.call_tool("get_postmortem", {"postmortem_id": DNS})

    for role in Role:
        assert answer(anyio.run(session, role))["postmortem"]["id"] == DNS


def test_clients_of_the_handshake_era_are_served_too(site: Site) -> None:
    async def session() -> tuple[set[str], CallToolResult]:
        async with connected(site, mode="legacy") as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            return names, await client.call_tool("get_postmortem", {"postmortem_id": DNS})

    names, found = run(session)
    assert names == TOOLS and answer(found)["postmortem"]["id"] == DNS


def test_mcp_needs_a_valid_api_key(site: Site) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        refused = httpx.post(f"{site.url}/mcp", json=body, headers={**accept, **headers})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.headers["content-type"] == "application/problem+json"

    async def session() -> None:
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer nope"}) as http:
            transport = streamable_http_client(f"{site.url}/mcp", http_client=http)
            async with Client(transport) as client:
                await client.list_tools()

    with pytest.raises(ExceptionGroup) as refused_session:
        run(session)
    assert refused_session.group_contains(MCPError, match="error response")


# --- the tools over stdio ------------------------------------------------------------------


def test_rca_mcp_serves_the_tools_over_stdio(tmp_path: Path, own_database: ModuleBackend) -> None:
    data = tmp_path / "data"
    store = Store.open(Settings(data_dir=data))
    try:
        own_database.holds(store.engine)
        import_paths(store, [EXAMPLES / f"{DNS}.md"], 10**6)
    finally:
        store.close()
    rca = Path(sys.executable).parent / "rca"
    environment = {
        "RCA_RETRIEVAL__EMBEDDER": "fake",
        "RCA_LLM__MODEL": "unused/never-called",
        "RCA_API__WARM_UP": "false",
        processes.MARK: os.environ[processes.MARK],
        # The database (and vector index) the test's store wrote to, on PostgreSQL.
        **own_database.environment,
    }
    server = StdioServerParameters(
        command=str(rca), args=["--data-dir", str(data), "mcp"], env=environment
    )

    async def session() -> tuple[set[str], CallToolResult, CallToolResult, CallToolResult]:
        async with Client(server) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            shown = await client.call_tool("get_postmortem", {"postmortem_id": DNS})
            missing = await client.call_tool("request_draft", {"incident_id": "inc-nope"})
            listed = await client.call_tool("list_open_action_items", {"limit": 2})
            return names, shown, missing, listed

    names, shown, missing, listed = run(session)
    assert names == TOOLS
    assert answer(shown)["postmortem"]["title"].startswith("Cluster-wide service discovery")
    assert "incident 'inc-nope' not found" in error(missing)
    assert [i["postmortem_id"] for i in answer(listed)["items"]] == [DNS, DNS]
