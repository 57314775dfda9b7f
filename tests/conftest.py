"""Shared fixtures: a temporary data directory, an open store, no network, and no process
left running after the test run."""

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
from tests import processes

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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = Store.open(settings)
    yield opened
    opened.close()
