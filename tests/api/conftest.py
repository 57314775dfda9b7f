"""Fixtures of the API tests: a running app on a fresh data directory, with a key per role.
Every test here (and in web/) runs on SQLite with an embedded vector index, and on PostgreSQL
with the run's Chroma server (`backend` and `chroma_server` in tests/conftest.py): the two
configurations rca is run in, on one machine and on several."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.support import Api, running_api
from tests.chroma_server import ChromaServer, chroma_settings


@pytest.fixture(autouse=True)
def _on_each_backend(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test here runs once per database back end; on PostgreSQL the vector index is a
    database of its own on the Chroma server (through the environment, so every `Settings` of
    the test, and every process it starts, uses it). `RCA_TEST_CHROMA_SERVER=0` keeps the
    embedded index there too (to measure what the server costs)."""
    if backend == "postgresql" and os.environ.get("RCA_TEST_CHROMA_SERVER", "1") != "0":
        server: ChromaServer = request.getfixturevalue("chroma_server")
        for name, value in chroma_settings(server).items():
            monkeypatch.setenv(f"RCA_RETRIEVAL__{name.upper()}", value)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from running_api(tmp_path)
