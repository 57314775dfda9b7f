"""`rca embedder serve`: the embedding service (`api.embedder_service`) on a Unix socket or a
TCP port, holding the embedding model the settings name for every process pointed at it
(`RCA_RETRIEVAL__EMBEDDER=remote`, `RCA_RETRIEVAL__EMBEDDER_URL`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from rca.cli.common import settings_of

embedder_app = typer.Typer(help="The embedding service: one process holds the model for all.")


@embedder_app.command("serve")
def serve_command(
    ctx: typer.Context,
    socket_path: Annotated[
        Path | None,
        typer.Option("--socket", help="Listen on this Unix socket (made 0600) instead of TCP."),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on (no authentication).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8001,
) -> int:
    """Serve embeddings over HTTP from the model the settings name (not `remote`)."""
    from api.embedder_service import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve(settings_of(ctx), socket_path, host, port)
    return 0
