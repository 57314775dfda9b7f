"""`rca check`: the store's integrity check (`rca.store.integrity`); exit 1 when it finds a
problem, so scripts and monitors can act on it."""

from __future__ import annotations

import typer

from rca.cli.common import open_store
from rca.store.integrity import RULES, check


def check_command(ctx: typer.Context) -> int:
    """Check the store: the database's own checks (SQLite) and rca's rules; exit 1 on a problem."""
    store = open_store(ctx)
    try:
        problems = check(store.engine)
    finally:
        store.close()
    if not problems:
        typer.echo(f"store sound: {len(RULES)} rules hold")
        return 0
    for problem in problems:
        typer.echo(f"problem: {problem}", err=True)
    typer.echo(f"{len(problems)} problem(s) found", err=True)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `rca check` to the command."""
    app.command("check")(check_command)
