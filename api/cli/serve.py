"""`rca serve` (the HTTP API, optionally with worker processes) and `rca worker`."""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Annotated

import typer

from api import metrics
from api.digest_schedule import DigestSchedule
from api.services import Services
from api.webhook_sender import WebhookSenders
from api.worker import DraftWorker
from rca.cli.common import settings_of
from rca.config import Settings
from rca.store import Store
from rca.store.keys import ApiKeys, Role


def serve_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, max=64, help="Server processes (default: RCA_API__PROCESSES, 1)."
        ),
    ] = None,
    draft_workers: Annotated[
        int | None,
        typer.Option("--draft-workers", min=0, max=64, help="Draft worker threads in the server."),
    ] = None,
    admin_key: Annotated[
        bool, typer.Option("--admin-key", help="Create and print a fresh admin API key first.")
    ] = False,
) -> int:
    """Serve the HTTP API and the web UI."""
    import uvicorn

    from api.app import create_app
    from api.serving import uvicorn_options

    settings = settings_of(ctx)
    host = host or settings.api.host
    port = port or settings.api.port
    processes = workers or settings.api.processes
    if admin_key:
        store = Store.open(settings)
        try:
            key, info = ApiKeys(store.engine).create("make run admin", Role.ADMIN)
        finally:
            store.close()
        typer.echo(f"admin API key (shown once, id {info.id}): {key}")
    typer.echo(f"rca serving on http://{host}:{port}  (web UI: http://{host}:{port}/ui/)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if processes == 1:
        if metrics.multiprocess_dir() is not None:  # given: clear it of an earlier run's samples
            metrics.start_multiprocess(settings.data_dir)
        app = create_app(settings, workers=draft_workers)
        uvicorn.run(app, host=host, port=port, **uvicorn_options(settings))
        return 0
    # Every process started from here writes its metrics to one fresh directory, and
    # `/metrics` sums them all, whichever process answers the scrape.
    shared, ours = metrics.start_multiprocess(settings.data_dir)
    try:
        return _serve_processes(settings, host, port, processes, draft_workers)
    finally:
        metrics.end_multiprocess(shared, ours)


def _serve_processes(
    settings: Settings, host: str, port: int, processes: int, draft_workers: int | None
) -> int:
    """N server processes, one embedding service (unless one is configured) and, unless no
    draft workers are wanted, one `rca worker`."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from api.embedder_process import EmbedderProcess
    from api.serving import end_with_parent, uvicorn_options
    from api.supervisor import Supervisor

    supervisor = Supervisor(
        uvicorn.Config(
            "api.serving:server_process_app",
            factory=True,
            workers=processes,
            host=host,
            port=port,
            **uvicorn_options(settings),
        ),
        processes,
    )
    if not supervisor.port_free():  # before starting the services below
        return STARTUP_FAILURE
    # Each process builds its own app from the environment: hand the command line's choices
    # down that way. Drafting moves to one `rca worker` child at a lower CPU priority: inside
    # a server process it shares that process's GIL with request handling (measured: draft
    # submission p99 253 ms with the worker inside, 185 ms with it beside, 32 clients).
    os.environ["RCA_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["RCA_API__DRAFT_WORKERS"] = "0"
    # One embedding service holds the model for every process below (each would load its own).
    embedder = None
    if settings.retrieval.embedder != "remote":
        embedder = EmbedderProcess(settings)
        embedder.start()
        os.environ["RCA_RETRIEVAL__EMBEDDER"] = "remote"
        os.environ["RCA_RETRIEVAL__EMBEDDER_URL"] = str(embedder.socket)
    threads = settings.api.draft_workers if draft_workers is None else draft_workers
    drafter = None
    if threads > 0:
        drafter = subprocess.Popen(
            [sys.executable, "-m", "rca", "worker", "--threads", str(threads), "--nice", "10"],
            preexec_fn=functools.partial(end_with_parent, os.getpid()),
        )
    try:
        return supervisor.run()
    finally:
        if embedder is not None:  # first: the drafter's wait below may fail
            embedder.stop()
        if drafter is not None:
            drafter.terminate()
            drafter.wait(30)
            metrics.process_ended(drafter.pid)


def worker_command(
    ctx: typer.Context,
    threads: Annotated[int, typer.Option("--threads", min=1, max=64)] = 1,
    nice: Annotated[
        int, typer.Option("--nice", min=0, max=19, help="Lower this process's CPU priority.")
    ] = 0,
    name: Annotated[str, typer.Option("--name", help="Worker name (in leases and logs).")] = "",
) -> int:
    """Run draft jobs from the queue in this process, until interrupted."""
    settings = settings_of(ctx)
    if nice:
        os.nice(nice)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    services = Services.open(settings)
    base = name or f"{socket.gethostname()}-{os.getpid()}"
    workers = [DraftWorker(services, f"{base}-{n + 1}") for n in range(threads)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for worker in workers:
        worker.start()
    senders = WebhookSenders(
        services.store.engine, settings.outbound, DigestSchedule(services.store, settings)
    )
    senders.start()
    typer.echo(f"rca worker {base}: {threads} thread(s) waiting for draft jobs", err=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for worker in workers:
            worker.stop()
        senders.stop()
        services.close()
        metrics.process_ended(os.getpid())
    return 0
