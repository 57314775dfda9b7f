"""The store's tests run on SQLite and on PostgreSQL (see `backend` in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _on_each_backend(backend: str) -> None:
    """Every test here runs once per database back end."""
