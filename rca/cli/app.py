"""The `rca` command, assembled here and only here.

| command | module |
|---|---|
| `import`, `export`, `list`, `show` | `rca.cli.records` |
| `model pull`, `model verify` | `rca.cli.model` |
| `integrations ...`, `changes list`, `ingest slack` | `rca.cli.integrations` |
| `digest` | `rca.cli.digest` |
| `check` | `rca.cli.check` |
| `similar`, `index ...` | `retrieval.cli` (entry point `rca.cli: retrieval`) |
| `draft`, `serve`, `worker`, `keys ...`, `mcp` | `api.cli` (entry point `rca.cli: api`) |
| `recurrences ...`, `embedder serve` | `api.cli` |
| `eval ...` | `evals.cli` (entry point `rca.cli: evals`) |

The core commands are added directly; the packages above rca plug theirs in through the
`rca.cli` entry points (declared in pyproject.toml), each a `register(app, hooks)`, so rca never
imports retrieval, api or evals. Errors are one line on stderr and a non-zero exit, never a
traceback (set RCA_DEBUG=1 to see one).
"""

import os
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from typer.exceptions import Abort, Exit, TyperException

from rca.cli import check, digest, integrations, model, records
from rca.cli.common import HOOKS
from rca.config import Settings
from rca.errors import ConfigurationError, RcaError

app = typer.Typer(
    name="rca",
    help="AI-assisted root-cause analysis for infrastructure incidents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


_plugins_loaded = False


def build() -> typer.Typer:
    """The whole `rca` command: the core commands, then every installed plugin's, in name order.

    Idempotent: a second call returns the same app unchanged."""
    global _plugins_loaded
    if _plugins_loaded:
        return app
    _plugins_loaded = True
    records.register(app)
    model.register(app)
    integrations.register(app)
    digest.register(app)
    check.register(app)
    for entry in sorted(entry_points(group="rca.cli"), key=lambda e: e.name):
        entry.load()(app, HOOKS)
    return app


@app.callback()
def _root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Directory with all state (default: $RCA_DATA_DIR or ./.rca)."
        ),
    ] = None,
) -> None:
    try:
        settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"bad setting RCA_{where.upper()}: {first['msg']}") from err
    ctx.obj = settings


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every error into one line and an exit status."""
    debug = os.environ.get("RCA_DEBUG") == "1"
    if not (sys.argv[1:] if argv is None else argv):
        argv = ["--help"]
    try:
        build()
        result = app(args=argv, prog_name="rca", standalone_mode=False)
    except Exit as done:
        sys.exit(done.exit_code)
    except TyperException as err:
        typer.echo(f"rca: error: {err.format_message()}", err=True)
        sys.exit(err.exit_code)
    except (Abort, KeyboardInterrupt):
        typer.echo("rca: interrupted", err=True)
        sys.exit(130)
    except RcaError as err:
        typer.echo(f"rca: error: {err}", err=True)
        sys.exit(1)
    except Exception as err:
        if debug:
            traceback.print_exc()
        typer.echo(
            f"rca: internal error: {type(err).__name__}: {err} (RCA_DEBUG=1 shows the traceback)",
            err=True,
        )
        sys.exit(70)
    sys.exit(result if isinstance(result, int) else 0)
