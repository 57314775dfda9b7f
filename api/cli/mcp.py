"""`rca mcp`: rca's tools for an AI assistant, over stdio (the Model Context Protocol).

The assistant starts `rca mcp` and talks to it on its stdin and stdout; the tools
(`api.mcp_server`) read the configured data directory directly. The caller is the local user
who started it, so there is no API key: the tools act as an engineer named "mcp-stdio" (who
can start the command can read the data directory anyway). A draft requested here is queued
like any other; a running `rca serve` or `rca worker` on the same data directory drafts it,
or this process does with `--draft-workers N`. Logs go to stderr.
"""

from __future__ import annotations

from typing import Annotated

import anyio
import typer

from api.mcp_server import STDIO, build_server
from api.services import Services
from api.worker import InServerWorkers
from rca.cli.common import settings_of


def mcp_command(
    ctx: typer.Context,
    draft_workers: Annotated[
        int,
        typer.Option(
            "--draft-workers",
            min=0,
            max=8,
            help="Draft requested drafts in this process too (default: leave them to "
            "`rca serve` or `rca worker`).",
        ),
    ] = 0,
) -> int:
    """Serve rca's tools to an AI assistant over stdio (MCP): similar incidents, postmortems,
    open action items, drafts."""
    services = Services.open(settings_of(ctx))
    workers = InServerWorkers(services, draft_workers)
    workers.start()
    try:
        anyio.run(build_server(services, STDIO).run_stdio_async)
    finally:
        workers.stop()
        services.close()
    return 0
