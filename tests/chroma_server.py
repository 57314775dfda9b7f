"""A real Chroma server on loopback for the tests: `chroma run` (installed with chromadb) on a
free port, its data in a directory of its own; it can be stopped, killed and started again on
the same port and data, as a restart in production would.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import stop


def chroma_settings(server: ChromaServer) -> dict[str, str]:
    """Retrieval settings naming a fresh database of its own on `server` (rca creates it)."""
    return {"chroma_url": server.url, "chroma_database": f"test-{secrets.token_hex(8)}"}


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ChromaServer:
    """A `chroma run` process: `url` is what `RCA_RETRIEVAL__CHROMA_URL` takes."""

    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "chroma.log"

    @classmethod
    def start(cls, root: Path, port: int | None = None) -> ChromaServer:
        """Start a server with its data under `root`; returns once it answers a heartbeat."""
        root.mkdir(parents=True, exist_ok=True)
        server = cls(root, port or free_port())
        server.restart()
        return server

    def restart(self, timeout_s: float = 60.0) -> None:
        """(Re)start the process on the same port and data; waits for its heartbeat."""
        self.stop()
        chroma = Path(sys.executable).parent / "chroma"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(chroma), "run", "--path", str(self.root / "data"),
                 "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"chroma run ended:\n{self.log.read_text(errors='replace')}")
            try:
                urllib.request.urlopen(self.url + "/api/v2/heartbeat", timeout=2).close()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"chroma run did not answer in {timeout_s:.0f} s:\n"
                    + self.log.read_text(errors="replace")
                )
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the server (no clean shutdown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        stop(process, 10)
