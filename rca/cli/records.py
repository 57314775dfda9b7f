"""`rca import`, `rca export`, `rca list` and `rca show`: the store's records in and out."""

import json
import os
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from rca.cli.common import HOOKS, ExportFormat, json_dump, open_store, settings_of
from rca.domain import ActionStatus, Incident, Postmortem
from rca.errors import ConfigurationError, NotFound, RcaError
from rca.formats.action_export import to_github_issues, to_jira_csv
from rca.formats.importer import ImportReport, import_paths
from rca.formats.markdown import to_markdown
from rca.insights import facts
from rca.redaction import Redactor
from rca.store import Store


class ListKind(StrEnum):
    """What `rca list` lists."""

    postmortems = "postmortems"
    incidents = "incidents"


def postmortem_json(pm: Postmortem) -> str:
    """A postmortem in the interchange JSON format."""
    return json_dump(pm.model_dump(mode="json", exclude_none=True))


def incident_json(incident: Incident) -> str:
    """An incident in the interchange JSON format."""
    return json_dump(incident.model_dump(mode="json", exclude_none=True))


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
    store = open_store(ctx)
    try:
        report = import_paths(store, paths, settings_of(ctx).imports.max_file_bytes)
        _print_import_report(report)
        facts.refresh(store)  # the insights' postmortem facts: here, not in the next report
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


def export_command(
    ctx: typer.Context,
    ident: Annotated[
        str, typer.Argument(metavar="ID", help="Postmortem or incident id, or `actions`.")
    ],
    fmt: Annotated[
        ExportFormat | None,
        typer.Option("--format", "-f", help="md or json; for actions csv (Jira) or json (GitHub)."),
    ] = None,
    revision: Annotated[
        int | None, typer.Option("--revision", "-r", min=1, help="Revision (default: latest).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    status: Annotated[
        list[ActionStatus] | None,
        typer.Option("--status", help="Only action items in this state (with `actions`)."),
    ] = None,
    overdue: Annotated[
        bool,
        typer.Option("--overdue", help="Only action items overdue today, UTC (with `actions`)."),
    ] = False,
) -> int:
    """Export a postmortem as Markdown or JSON (an incident as JSON); `rca export actions` exports
    every postmortem's action items as CSV for Jira's import or JSON for GitHub issues, each
    with its key (External ID `pm-id#key`) and due date."""
    if ident == "actions":
        text = _actions(ctx, fmt or ExportFormat.csv, status or [], overdue)
        return _emit(text, output)
    if status or overdue:
        raise ConfigurationError("--status and --overdue apply to `rca export actions` only")
    fmt = fmt or ExportFormat.md
    if fmt is ExportFormat.csv:
        raise ConfigurationError("CSV is for action items: rca export actions --format csv")
    store = open_store(ctx)
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
    return _emit(text, output)


def _emit(text: str, output: Path | None) -> int:
    if output is None:
        typer.echo(text, nl=False)
    else:
        _write_atomically(output, text)
        typer.echo(f"wrote {output}", err=True)
    return 0


def _actions(
    ctx: typer.Context, fmt: ExportFormat, statuses: list[ActionStatus], overdue: bool
) -> str:
    """Every postmortem's action items (latest revisions, tracked statuses) for a tracker."""
    if fmt is ExportFormat.md:
        raise ConfigurationError("action items export as csv (Jira) or json (GitHub issues)")
    settings = settings_of(ctx)
    store = open_store(ctx)
    try:
        rows = []
        after = None
        while True:
            page = store.action_item_page(500, after, statuses, overdue=overdue or None)
            rows += page
            if len(page) < 500:
                break
            after = (page[-1].postmortem_id, page[-1].item)
    finally:
        store.close()
    redactor = Redactor(ip_addresses=settings.redaction.ip_addresses)
    if fmt is ExportFormat.csv:
        return to_jira_csv(rows, redactor)
    return to_github_issues(rows, redactor)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write {path}: {err.strerror or err}") from err


def list_command(
    ctx: typer.Context,
    kind: Annotated[ListKind, typer.Option("--kind", "-k", help="What to list.")] = (
        ListKind.postmortems
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> int:
    """List stored postmortems (newest first) or incidents."""
    store = open_store(ctx)
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


def show_command(
    ctx: typer.Context,
    ident: Annotated[str, typer.Argument(metavar="ID", help="Postmortem or incident id.")],
    revision: Annotated[
        int | None, typer.Option("--revision", "-r", min=1, help="Revision (default: latest).")
    ] = None,
) -> int:
    """Show a postmortem with its revisions, or an incident with time to detect/mitigate/resolve."""
    store = open_store(ctx)
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


def register(app: typer.Typer) -> None:
    """Add the record commands to `app`."""
    app.command("import")(import_command)
    app.command("export")(export_command)
    app.command("list")(list_command)
    app.command("show")(show_command)
