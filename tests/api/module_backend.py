"""Database back ends for API test modules that build their server once per module.

The function-scoped `backend` fixture (tests/conftest.py) cannot feed a module-scoped server, so
such a module marks itself `PER_MODULE` (which keeps `backend` on SQLite for each test, and
unsets `RCA_DATABASE_URL` while the test runs) and builds its server on `module_backend`
instead: parametrized at module scope over SQLite and PostgreSQL, so pytest builds the server
twice, once per back end, and runs every test of the module on each. On PostgreSQL the module
gets a fresh copy of the migrated template database and a Chroma database of its own (the
configuration rca runs in on several machines), named in the environment for the module's
lifetime: the server's `Settings`, and any process it starts, read them while it is built.

A module imports the fixtures (pytest finds fixtures in a test module's namespace, under the
names they are declared with: `module_backend`, `own_database`), marks itself `PER_MODULE`,
and checks its server with `module_backend.holds(engine)`. A test of such a module that builds
its own app or store takes `own_database`: on PostgreSQL a fresh database of its own. A test
marked `only_on("sqlite")` runs on that back end alone. Test ids name the module's back end
(`test_x[module-postgresql-sqlite]`: the module's server on PostgreSQL, `backend` on SQLite),
so `-k postgresql` selects the PostgreSQL runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rca.config import Settings
from tests import postgres
from tests.chroma_server import ChromaServer, chroma_settings

BACKENDS = ("sqlite", "postgresql")

PER_MODULE = pytest.mark.sqlite_only
"""The mark of a module whose back end is `module_backend`: the function-scoped `backend` stays
on SQLite (one run per test and module back end, not two)."""


def only_on(*names: str) -> pytest.MarkDecorator:
    """Run a test of a module on `module_backend` on these back ends only (the test must use
    the fixture, itself or through the module's server): where another back end would only
    repeat what it checks, at a cost the run cannot afford."""
    chosen = [pytest.param(name, id=f"module-{name}") for name in names]
    return pytest.mark.parametrize("module_backend", chosen, indirect=True)


@dataclass(frozen=True)
class ModuleBackend:
    """The database back end a module's server is built on."""

    name: str
    """"sqlite" (the file in the server's data directory) or "postgresql"."""
    environment: dict[str, str] = field(default_factory=dict)
    """The RCA_ variables naming this back end's database and vector index (none on SQLite):
    set for the module's lifetime, and to pass to processes started while a test runs (when
    `backend` has unset `RCA_DATABASE_URL`)."""

    def settings(self, data_dir: Path) -> Settings:
        """The settings of a process on this back end with `data_dir`."""
        return Settings(data_dir=data_dir, database_url=self.environment.get("RCA_DATABASE_URL"))

    def holds(self, engine: Engine) -> None:
        """Fail unless `engine` (a server's store) is on this back end."""
        assert engine.dialect.name == self.name, (
            f"the module's server runs on {engine.dialect.name}, not on {self.name}: its "
            "settings were read after the module's environment was undone"
        )


def _postgresql_environment(
    request: pytest.FixtureRequest,
) -> tuple[postgres.Cluster, str, dict[str, str]]:
    """A fresh migrated database on the run's cluster and a Chroma database of its own: the
    cluster, the database's name and the RCA_ variables naming both."""
    cluster: postgres.Cluster = request.getfixturevalue("postgres_cluster")
    server: ChromaServer = request.getfixturevalue("chroma_server")
    name = cluster.create(template=postgres.TEMPLATE)
    environment = {"RCA_DATABASE_URL": cluster.url(name)}
    for key, value in chroma_settings(server).items():
        environment[f"RCA_RETRIEVAL__{key.upper()}"] = value
    return cluster, name, environment


@pytest.fixture(
    scope="module",
    params=BACKENDS,
    ids=lambda name: f"module-{name}",  # a function: right for `only_on`'s params too
    name="module_backend",
)
def module_backend_fixture(request: pytest.FixtureRequest) -> Iterator[ModuleBackend]:
    """The back end of this run of the module (its server fixtures take this)."""
    chosen: str = request.param
    with pytest.MonkeyPatch.context() as patch:
        if chosen == "sqlite":
            patch.delenv("RCA_DATABASE_URL", raising=False)
            yield ModuleBackend(chosen)
            return
        cluster, name, environment = _postgresql_environment(request)
        for key, value in environment.items():
            patch.setenv(key, value)
        try:
            yield ModuleBackend(chosen, environment)
        finally:
            postgres.close_connections()  # those the module's server left open, before the drop
            cluster.drop(name)


@pytest.fixture(name="own_database")
def own_database_fixture(
    module_backend: ModuleBackend, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleBackend]:
    """For a test that builds its own app or store in a module on `module_backend`: on
    PostgreSQL a fresh database (and Chroma database) of its own, named in the environment
    while the test runs; on SQLite the data directory's file, as ever."""
    if module_backend.name == "sqlite":
        yield module_backend
        return
    cluster, name, environment = _postgresql_environment(request)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    try:
        yield ModuleBackend(module_backend.name, environment)
    finally:
        # Not `postgres.close_connections()`: the module's server may hold some still. The
        # test closes what it opened; FORCE ends anything left.
        cluster.drop(name)
