"""`rca serve`, `rca worker` and `rca keys ...`, plugged into the rca CLI."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from api.services import Services
from api.worker import DraftWorker
from rca.cli import CliHooks, settings_of
from rca.errors import InvalidArgument
from rca.keys import ApiKeys, Role
from rca.store import Store

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


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
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app

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
    typer.echo(
        f"rca serving on http://{host}:{port}  (web UI: http://{host}:{port}/ui/, "
        f"API docs: http://{host}:{port}/docs)"
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if processes == 1:
        app = create_app(settings, workers=draft_workers)
        uvicorn.run(app, host=host, port=port, log_level="info")
        return 0
    # Each process builds its own app from the environment: hand the command line's choices
    # down that way. Drafting moves to one `rca worker` child at a lower CPU priority: inside
    # a server process it shares that process's GIL with request handling (measured: draft
    # submission p99 253 ms with the worker inside, 185 ms with it beside, 32 clients).
    os.environ["RCA_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["RCA_API__DRAFT_WORKERS"] = "0"
    threads = settings.api.draft_workers if draft_workers is None else draft_workers
    drafter = None
    if threads > 0:
        drafter = subprocess.Popen(
            [sys.executable, "-m", "rca", "worker", "--threads", str(threads), "--nice", "10"],
            preexec_fn=_end_with_parent,
        )
    try:
        uvicorn.run(
            "api.app:app_from_environment",
            factory=True,
            workers=processes,
            host=host,
            port=port,
            log_level="info",
        )
    finally:
        if drafter is not None:
            drafter.terminate()
            drafter.wait(30)
    return 0


def _end_with_parent() -> None:
    """In the worker child: get SIGTERM when `rca serve` dies, even by SIGKILL (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker outlives a killed server
        pass


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
    typer.echo(f"rca worker {base}: {threads} thread(s) waiting for draft jobs", err=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for worker in workers:
            worker.stop()
        services.close()
    return 0


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")],
    role: Annotated[Role, typer.Option("--role")] = Role.ENGINEER,
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, max=3650, help="Lifetime in days.")
    ] = None,
) -> int:
    """Create a key; it is printed once and stored only as a hash."""
    store = Store.open(settings_of(ctx))
    try:
        lifetime = timedelta(days=expires_days) if expires_days else None
        key, info = ApiKeys(store.engine).create(name, role, lifetime)
    finally:
        store.close()
    typer.echo(f"created key {info.id} ({info.role.value}) for {info.name}")
    typer.echo(key)
    return 0


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> int:
    """Every key: id, role, name, state."""
    store = Store.open(settings_of(ctx))
    try:
        keys = ApiKeys(store.engine).list()
    finally:
        store.close()
    now = datetime.now(UTC)
    for info in keys:
        state = "active" if info.active(now) else ("revoked" if info.revoked_at else "expired")
        expires = info.expires_at.date().isoformat() if info.expires_at else "never"
        typer.echo(f"{info.id}  {info.role.value:<8}  {state:<7}  expires {expires}  {info.name}")
    if not keys:
        typer.echo("no keys")
    return 0


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: Annotated[str, typer.Argument()]) -> int:
    """Revoke a key by its id; requests with it get 401 from now on."""
    if not key_id.strip():
        raise InvalidArgument("give the key id (see `rca keys list`)")
    store = Store.open(settings_of(ctx))
    try:
        info = ApiKeys(store.engine).revoke(key_id.strip())
    finally:
        store.close()
    typer.echo(f"revoked key {info.id} ({info.name})")
    return 0


def register(app: typer.Typer, _hooks: CliHooks) -> None:
    """Add `rca serve`, `rca worker` and `rca keys` to the CLI."""
    app.command("serve")(serve_command)
    app.command("worker")(worker_command)
    app.add_typer(keys_app, name="keys")
