"""Shared set-up for API tests: the real app on a temporary data directory, fake model and
embedder, API keys for each role."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Services
from api.worker import DraftWorker
from rca.config import Settings
from rca.llm import ScriptedModel, register_provider
from rca.store.keys import Role
from rca.testing import fake_analyst

ROOT = Path(__file__).parents[2]
INCIDENT_FILE = ROOT / "examples" / "incidents" / "inc-2026-01-checkout-db-pool.json"


@dataclass
class Api:
    """A running app and a key per role."""

    client: TestClient
    services: Services
    keys: dict[Role, str]
    model: ScriptedModel

    def headers(self, role: Role | None, **extra: str) -> dict[str, str]:
        """Authorization for `role` (none for None), plus extra headers."""
        found = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return {**found, **extra}

    def get(self, path: str, role: Role | None = Role.ENGINEER, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers(role, **kw.pop("headers", {})), **kw)

    def post(self, path: str, role: Role | None = Role.ENGINEER, **kw: Any) -> Any:
        return self.client.post(path, headers=self.headers(role, **kw.pop("headers", {})), **kw)


def api_settings(tmp_path: Path, **api: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        retrieval={"embedder": "fake"},
        llm={"model": "fake/analyst", "max_retries": 0},
        api=api,
    )


def running_api(tmp_path: Path, **settings: Any) -> Iterator[Api]:
    model = ScriptedModel(reply=fake_analyst)
    register_provider("fake", model)
    app = create_app(api_settings(tmp_path, **settings), workers=0)
    with TestClient(app, raise_server_exceptions=False) as client:
        services: Services = app.state.services
        keys = {role: services.keys.create(f"test {role.value}", role)[0] for role in Role}
        yield Api(client, services, keys, model)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app on a real uvicorn server in a thread (its lifespan runs); yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def draft_and_finalize(
    api: Api, job_id: str, sections: tuple[str, ...] | None = ("summary", "action_item")
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the queued draft job `job_id`, accept its suggestions in `sections` (every one when
    None) and finalize it; the draft as the API showed it, and the finalize result."""
    assert DraftWorker(api.services, "test").run_once()
    draft: dict[str, Any] = api.get(f"/v1/drafts/{job_id}").json()
    version = 1
    for s in draft["draft"]["suggestions"]:
        if sections is None or s["section"] in sections:
            ok = api.post(
                f"/v1/drafts/{job_id}/suggestions/{s['id']}/review",
                Role.REVIEWER,
                json={"decision": "accept"},
                headers={"If-Match": f'"{version}"'},
            )
            assert ok.status_code == 200, ok.text
            version += 1
    final = api.post(
        f"/v1/drafts/{job_id}/finalize", Role.REVIEWER, headers={"If-Match": f'"{version}"'}
    )
    assert final.status_code == 201, final.text
    return draft, dict(final.json())
