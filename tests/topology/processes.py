"""The `rca worker` processes of the topology test and the slow fake model they draft with.

The fake model is the scripted analyst (`rca.testing.fake_analyst`) behind a `sitecustomize`
on PYTHONPATH, registered only in `rca worker` processes; each answer waits
`RCA_TOPOLOGY_MODEL_DELAY_S` seconds first, so a draft (several questions) takes long enough to
kill its worker in the middle of it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DELAY_ENV = "RCA_TOPOLOGY_MODEL_DELAY_S"

FAKE_MODEL = f"""\
import os
import sys
import time

if len(sys.argv) > 1 and sys.argv[1] == "worker":  # `rca worker`, which drafts
    from rca.llm import ScriptedModel, register_provider
    from rca.testing import fake_analyst

    _delay = float(os.environ.get("{DELAY_ENV}", "0"))

    def _slow_analyst(messages):
        time.sleep(_delay)
        return fake_analyst(messages)

    register_provider("fake", ScriptedModel(reply=_slow_analyst))
"""
"""A `sitecustomize` giving `rca worker` processes the slow scripted fake model."""


def fake_model_site(directory: Path) -> str:
    """Write the `sitecustomize` into `directory`; the PYTHONPATH that loads it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(FAKE_MODEL)
    return os.pathsep.join(p for p in (str(directory), os.environ.get("PYTHONPATH", "")) if p)


@dataclass
class Worker:
    """A running `rca worker --name NAME`: its leases are held as `NAME-1`."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def lease_owner(self) -> str:
        return f"{self.name}-1"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, its lease is left to expire."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM (the worker finishes its job), SIGKILL after 30 s."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


@contextmanager
def rca_worker(root: Path, name: str, **env: str) -> Iterator[Worker]:
    """`rca worker --name NAME` with its own data directory under `root` and `env` added to the
    environment; yields once it says it is waiting for jobs, stops it afterwards."""
    data = root / name
    data.mkdir(parents=True, exist_ok=True)
    log = root / f"worker-{name}.log"
    rca = Path(sys.executable).parent / "rca"
    environment = {**os.environ, "RCA_DATA_DIR": str(data), **env}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(rca), "worker", "--name", name],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    worker = Worker(name, process, log)
    try:
        deadline = time.monotonic() + 180
        while "waiting for draft jobs" not in worker.log_text():
            assert process.poll() is None, f"rca worker {name} ended:\n{worker.log_text()}"
            assert time.monotonic() < deadline, f"rca worker {name} did not start:\n{log}"
            time.sleep(0.1)
        yield worker
    finally:
        worker.stop()
