"""A real Alertmanager sends its webhook to a loopback receiver, and `translate` reads what it
sends: a firing notification, then a resolved one."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rca.domain import Severity
from rca.integrations.alertmanager import (
    AlertStatus,
    LabelMapping,
    parse_notification,
    translate,
)
from tests.api.support import free_port
from tests.integrations import alertmanager_server
from tests.integrations.alertmanager_server import AlertmanagerMissing, running_alertmanager

TOKEN = "am-test-token-3b1f9c"
WAIT_S = 15.0


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@contextmanager
def receiver() -> Iterator[tuple[str, queue.Queue[Received]]]:
    """A loopback HTTP server that records every POST and answers 200; yields its URL."""
    got: queue.Queue[Received] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            got.put(Received(self.path, dict(self.headers.items()), self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1/hooks/alertmanager", got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def next_notification(got: queue.Queue[Received], status: str) -> tuple[Received, dict[str, Any]]:
    """The next request whose payload has `status`, within WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            request = got.get(timeout=left)
        except queue.Empty:
            break
        payload = json.loads(request.body)
        if payload.get("status") == status:
            return request, payload
    raise AssertionError(f"no {status} notification arrived within {WAIT_S}s")


def test_real_alertmanager_notifications_are_read(tmp_path: Path) -> None:
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    alert: dict[str, Any] = {
        "labels": {
            "alertname": "CheckoutErrorRate",
            "service": "checkout",
            "severity": "critical",
            "instance": "checkout-7f9c:8080",
        },
        "annotations": {
            "summary": "Checkout 5xx rate above 5%",
            "runbook_url": "https://runbooks.example.internal/checkout-5xx",
        },
        "startsAt": started.isoformat(),
        "generatorURL": "http://prometheus.example.internal:9090/graph?g0.expr=up",
    }
    with (
        receiver() as (url, got),
        running_alertmanager(tmp_path, url, TOKEN) as alertmanager,
    ):
        alertmanager.push([alert])
        request, firing = next_notification(got, "firing")
        alertmanager.resolve([alert])
        _, resolved = next_notification(got, "resolved")
    assert request.path == "/v1/hooks/alertmanager"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert firing["version"] == "4"
    assert resolved["version"] == "4"

    mapping = LabelMapping()
    opened = translate(parse_notification(json.dumps(firing)), mapping)
    closed = translate(parse_notification(json.dumps(resolved)), mapping)

    (fired,) = opened.firing
    fingerprint = firing["alerts"][0]["fingerprint"]
    assert fired.id == f"am-{fingerprint}-{started.strftime('%Y%m%dT%H%M%S')}"
    assert fired.at == started
    assert fired.name == "CheckoutErrorRate"
    assert fired.text == "Checkout 5xx rate above 5%"
    assert fired.labels == {
        **alert["labels"],
        "generator_url": alert["generatorURL"],
        "annotation:runbook_url": alert["annotations"]["runbook_url"],
    }
    assert opened.group_key == firing["groupKey"]
    assert opened.status is AlertStatus.FIRING
    assert opened.title == "Checkout 5xx rate above 5%"
    assert opened.severity is Severity.SEV2
    assert opened.services == ["checkout"]
    assert opened.started_at == started
    assert (opened.all_resolved, opened.resolved_at, opened.truncated) == (False, None, 0)

    assert closed.group_key == opened.group_key
    assert [a.id for a in closed.firing] == [fired.id]
    assert closed.fingerprints == opened.fingerprints
    assert closed.all_resolved is True
    assert closed.resolved_at is not None
    assert started < closed.resolved_at <= datetime.now(UTC)


def test_a_missing_alertmanager_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alertmanager_server, "BINARY", tmp_path / "prometheus-alertmanager")
    with (
        pytest.raises(AlertmanagerMissing, match=r"`make test` installs it \(apt-get install"),
        running_alertmanager(tmp_path, "http://127.0.0.1:9/", TOKEN),
    ):
        pass


def test_an_alertmanager_that_does_not_start_shows_why(tmp_path: Path) -> None:
    with (
        pytest.raises(
            AssertionError, match=r"(?s)exited with 1.*Loading configuration file failed"
        ),
        running_alertmanager(tmp_path, "ftp://127.0.0.1/hook", TOKEN),
    ):
        pass
