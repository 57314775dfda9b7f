"""Fixtures of the API tests: a running app on a fresh data directory, with a key per role.
Every test here (and in web/) runs on SQLite and on PostgreSQL (`backend` in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.support import Api, running_api


@pytest.fixture(autouse=True)
def _on_each_backend(backend: str) -> None:
    """Every test here runs once per database back end."""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from running_api(tmp_path)
