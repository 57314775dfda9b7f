"""A database connection cut under a request is a brief 503 to send again, not a 500."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from api import problems

pytestmark = pytest.mark.sqlite_only


def _app(error: Exception) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise error

    return app


def test_a_cut_connection_is_a_503_with_retry_after() -> None:
    cut = OperationalError("SELECT 1", {}, Exception("terminating connection"))
    cut.connection_invalidated = True
    answer = TestClient(_app(cut)).get("/boom")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["type"].endswith("/store-unavailable")


def test_another_database_error_stays_a_500_with_an_error_id() -> None:
    other = OperationalError("SELECT 1", {}, Exception("disk I/O error"))
    answer = TestClient(_app(other)).get("/boom")
    assert answer.status_code == 500
    assert "error id" in answer.json()["detail"]
