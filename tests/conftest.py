"""Shared fixtures: a temporary data directory, an open store, no network, no process left
running after the test run, and the database back ends.

Tests that ask for `backend` (the store and API suites, through their conftest) run twice: on
SQLite and on PostgreSQL, each PostgreSQL run in a fresh database of a throwaway cluster
(`tests/postgres.py`), chosen by `RCA_DATABASE_URL` so every `Settings` of the test, and every
process it starts, uses it. `RCA_TEST_POSTGRES`: `auto` (the default) runs them where PostgreSQL
is installed and skips them, saying why, where not; `1` (as `make test` sets) makes a missing
PostgreSQL a failure; `0` skips them.

`chroma_server` is one Chroma server (`chroma run` on loopback) for the whole run; a test that
uses it gets a database of its own there (`chroma_settings`), so tests never see each other's
collections. The API suite's PostgreSQL runs use it: PostgreSQL and a Chroma server is how an
organisation runs rca on several machines.
"""

from __future__ import annotations

import multiprocessing.resource_tracker
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rca.config import Settings
from rca.store import Store
from tests import postgres, processes
from tests.chroma_server import ChromaServer, free_port

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else address
    if (
        isinstance(host, str)
        and host not in ("127.0.0.1", "::1", "localhost", "")
        and (self.family in (socket.AF_INET, socket.AF_INET6))
    ):
        raise RuntimeError(f"tests must not reach the network (tried {address!r})")
    return _real_connect(self, address)


_real_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(host, bytes):
        host = host.decode()
    if host not in (None, "127.0.0.1", "::1", "localhost", ""):
        raise RuntimeError(f"tests must not resolve outside names (tried {host!r})")
    return _real_getaddrinfo(host, *args, **kwargs)


# Also at import time: libraries that fetch while being imported (litellm's price list, a
# hub lookup) must fail loudly here, not quietly in a background thread.
socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)


@pytest.fixture(scope="session", autouse=True)
def _no_process_left_behind() -> Iterator[None]:
    """Every process the run starts carries a mark in its environment; any still running at
    the end (a server's child whose parent was killed, handed to init) is killed and fails
    the run."""
    mark = secrets.token_hex(8)
    os.environ[processes.MARK] = mark
    yield
    ours = {multiprocessing.resource_tracker._resource_tracker._pid}  # ends with this process
    deadline = time.monotonic() + 10
    while (left := [p for p in processes.marked(mark) if p.pid not in ours]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)  # give processes that are stopping time to end
    processes.kill(left)
    if left:
        shown = "\n".join(f"  {p.pid}: {p.command[:200]}" for p in left)
        pytest.fail(f"the tests left {len(left)} process(es) running (now killed):\n{shown}")


BACKENDS = ("sqlite", "postgresql")


CHROMA_PORT = free_port()
"""The session Chroma server's port, chosen before collection so that the warning filter below
can name it."""


def pytest_configure(config: pytest.Config) -> None:
    # chromadb's HTTP client keeps keep-alive sockets to the server in objects it does not
    # close (its per-settings system cache); the garbage collector closes them later, in
    # whatever test runs then, or at the end. Only sockets to the session's Chroma server are
    # let through (later filter lines take precedence over the configured `error`).
    target = rf"raddr=\('127\.0\.0\.1', {CHROMA_PORT}\)"
    config.addinivalue_line("filterwarnings", f"ignore:unclosed <socket[^>]*{target}")
    config.addinivalue_line(
        "filterwarnings",
        f"ignore:Exception ignored in. <socket[^>]*{target}"
        ":pytest.PytestUnraisableExceptionWarning",
    )
    config.addinivalue_line(
        "markers", "sqlite_only: a test of SQLite's own machinery, not run on PostgreSQL"
    )
    config.addinivalue_line(
        "markers", "empty_database: on PostgreSQL, the test's database starts without a schema"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
        chosen = BACKENDS[:1] if only_sqlite else BACKENDS
        metafunc.parametrize("backend", chosen, indirect=True, scope="function")


@pytest.fixture(scope="session")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[postgres.Cluster]:
    """A throwaway PostgreSQL cluster for the run, with the migrated template database."""
    wanted = os.environ.get("RCA_TEST_POSTGRES", "auto")
    if wanted == "0":
        pytest.skip("PostgreSQL runs turned off (RCA_TEST_POSTGRES=0)")
    pg_bin = postgres.binaries()
    if pg_bin is None:
        message = (
            "PostgreSQL is not installed, so the PostgreSQL runs of the store and API tests"
            " are skipped; `make postgres` installs Debian's (`apt-get install postgresql`)"
        )
        if wanted == "1":
            pytest.fail(message.replace("are skipped", "cannot run"))
        pytest.skip(message)
    cluster = postgres.Cluster.start(pg_bin)
    postgres.track_connections()
    try:
        cluster.execute(f'CREATE DATABASE "{postgres.TEMPLATE}"')
        data_dir = tmp_path_factory.mktemp("postgres-template")
        Store.open(Settings(data_dir=data_dir, database_url=cluster.url(postgres.TEMPLATE))).close()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The database back end of this run of the test: "sqlite" (the default file in the data
    directory) or "postgresql" (a fresh migrated database, named by RCA_DATABASE_URL)."""
    chosen: str = request.param
    if chosen == "sqlite":
        monkeypatch.delenv("RCA_DATABASE_URL", raising=False)
        yield chosen
        return
    cluster: postgres.Cluster = request.getfixturevalue("postgres_cluster")
    empty = request.node.get_closest_marker("empty_database") is not None
    name = cluster.create(template="template1" if empty else postgres.TEMPLATE)
    monkeypatch.setenv("RCA_DATABASE_URL", cluster.url(name))
    try:
        yield chosen
    finally:
        postgres.close_connections()  # those of engines the test left open, before the drop
        cluster.drop(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = Store.open(settings)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """One Chroma server for the run (tests that stop or kill a server start their own)."""
    server = ChromaServer.start(tmp_path_factory.mktemp("chroma-server"), CHROMA_PORT)
    try:
        yield server
    finally:
        server.stop()
