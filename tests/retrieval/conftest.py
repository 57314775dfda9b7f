"""The retrieval tests that index run twice: on an embedded index in the test's data directory,
and on the run's Chroma server, in a database of their own there (`chroma_server` in
tests/conftest.py). A test of the embedded index's files only is marked `embedded_only`."""

from __future__ import annotations

from pathlib import Path

import pytest

from rca.config import RetrievalSettings, Settings
from tests.chroma_server import ChromaServer, chroma_settings

INDEXES = ("embedded", "server")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "embedded_only: a test of the embedded index's files, not run on a server"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "settings" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("embedded_only") is not None
        metafunc.parametrize("index", INDEXES[:1] if only else INDEXES, indirect=True)


@pytest.fixture
def index(request: pytest.FixtureRequest) -> str:
    """Where the vector index lives in this run of the test: "embedded" or "server"."""
    chosen: str = request.param
    return chosen


@pytest.fixture
def settings(tmp_path: Path, index: str, request: pytest.FixtureRequest) -> Settings:
    if index == "embedded":
        return Settings(data_dir=tmp_path / "data")
    server: ChromaServer = request.getfixturevalue("chroma_server")
    return Settings(
        data_dir=tmp_path / "data", retrieval=RetrievalSettings(**chroma_settings(server))
    )
