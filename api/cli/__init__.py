"""The commands that wire several packages together: `rca draft`, `rca serve`, `rca worker`,
`rca keys`, `rca mcp`, `rca recurrences` and `rca embedder`, plugged into the rca CLI (entry
point `rca.cli:api`; see `rca.cli.app`).

- `draft`: draft an incident file from the command line, wired as the service wires it;
- `serve`: the HTTP API and its worker processes; `keys`: API keys;
- `mcp`: the tools for AI assistants over stdio (the same tools are at `/mcp` of `serve`);
- `recurrences`: proposing links to past postmortems of the same failure, e.g. after an import;
- `embedder serve`: the embedding service, one process holding the model for the others.
"""

from __future__ import annotations

import typer

from api.cli.draft import draft_command
from api.cli.embedder import embedder_app
from api.cli.keys import keys_app
from api.cli.mcp import mcp_command
from api.cli.recurrences import recurrences_app
from api.cli.serve import serve_command, worker_command
from rca.cli.common import CliHooks


def register(app: typer.Typer, _hooks: CliHooks) -> None:
    """Add `rca draft`, `rca serve`, `rca worker`, `rca keys`, `rca mcp` and
    `rca recurrences` to the CLI."""
    app.command("draft")(draft_command)
    app.command("serve")(serve_command)
    app.command("worker")(worker_command)
    app.add_typer(keys_app, name="keys")
    app.command("mcp")(mcp_command)
    app.add_typer(recurrences_app, name="recurrences")
    app.add_typer(embedder_app, name="embedder")
