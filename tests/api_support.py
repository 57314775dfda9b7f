"""Shared set-up for API tests: the real app on a temporary data directory, fake model and
embedder, API keys for each role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Services
from rca.config import Settings
from rca.keys import Role
from rca.llm import ScriptedModel, register_provider
from rca.testing import fake_analyst

ROOT = Path(__file__).parent.parent
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
