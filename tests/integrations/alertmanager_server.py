"""A real Alertmanager (Debian's `prometheus-alertmanager`) on loopback, for tests.

`running_alertmanager(tmp_path, receiver_url, token)` writes a configuration whose only
receiver is a webhook to `receiver_url` sending `Authorization: Bearer <token>` and resolved
notifications, starts Alertmanager on a free port (no clustering, its storage in `tmp_path`),
waits until it is ready, and stops it on exit. Alerts go in through its API
(`POST /api/v2/alerts`), as Prometheus would send them.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tests.api.support import free_port

BINARY = Path("/usr/bin/prometheus-alertmanager")
"""Where Debian's package installs Alertmanager."""
GROUP_WAIT = "1s"
"""How long Alertmanager waits before the first notification of a new group, so that alerts
pushed close together arrive in one notification."""
GROUP_INTERVAL = "100ms"
"""How long it waits before notifying a group's changes (resolutions included). Any positive
duration is accepted (Alertmanager 0.25 refuses only zero); 100ms makes resolutions arrive at
once without a busy loop."""
READY_TIMEOUT_S = 20.0
"""How long Alertmanager may take to answer `/-/ready`."""


class AlertmanagerMissing(RuntimeError):
    """The Alertmanager binary is not installed."""


@dataclass
class AlertmanagerProcess:
    """A running Alertmanager."""

    base_url: str
    """Its address, such as `http://127.0.0.1:40123`."""
    process: subprocess.Popen[bytes]
    """The process."""
    log: Path
    """Where its standard error goes."""

    def push(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts (`labels`, `annotations`, `startsAt`, `endsAt`, `generatorURL`) as
        Prometheus does."""
        request = urllib.request.Request(
            f"{self.base_url}/api/v2/alerts",
            data=json.dumps(alerts).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()
        except urllib.error.HTTPError as error:
            body = error.read().decode("utf-8", "replace")
            raise AssertionError(
                f"Alertmanager refused the alerts ({error.code}): {body}"
            ) from None

    def resolve(self, alerts: list[dict[str, Any]], ended: datetime | None = None) -> None:
        """Send the same alerts again, ended at `ended` (by default a second ago)."""
        moment = ended or datetime.now(UTC) - timedelta(seconds=1)
        self.push([{**alert, "endsAt": moment.isoformat()} for alert in alerts])

    def stderr(self) -> str:
        """What it has written to standard error so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")


def write_config(path: Path, receiver_url: str, token: str) -> None:
    """One route, grouped by alert name, to one webhook receiver with a bearer token."""
    config = {
        "route": {
            "receiver": "rca",
            "group_by": ["alertname"],
            "group_wait": GROUP_WAIT,
            "group_interval": GROUP_INTERVAL,
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "rca",
                "webhook_configs": [
                    {
                        "url": receiver_url,
                        "send_resolved": True,
                        "http_config": {"authorization": {"credentials": token}},
                    }
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


@contextmanager
def running_alertmanager(
    tmp_path: Path, receiver_url: str, token: str
) -> Iterator[AlertmanagerProcess]:
    """Alertmanager sending every notification to `receiver_url`; stopped on exit."""
    if not BINARY.exists():
        raise AlertmanagerMissing(
            f"{BINARY} is not installed: `make test` installs it "
            "(apt-get install prometheus-alertmanager)"
        )
    home = tmp_path / "alertmanager"
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = home / "alertmanager.yml"
    write_config(config, receiver_url, token)
    port = free_port()
    log = home / "stderr.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(BINARY),
                f"--config.file={config}",
                f"--storage.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    running = AlertmanagerProcess(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(running)
        yield running
    finally:
        _stop(process)


def _wait_ready(am: AlertmanagerProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if am.process.poll() is not None:
            raise AssertionError(
                f"Alertmanager exited with {am.process.returncode}:\n{am.stderr()}"
            )
        try:
            with urllib.request.urlopen(f"{am.base_url}/-/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"Alertmanager was not ready within {READY_TIMEOUT_S}s:\n{am.stderr()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
