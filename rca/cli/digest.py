"""`rca digest`: what a window of time brought (new incidents, finalized postmortems, new and
overdue action items, recurrences), as Markdown, a standalone HTML page or JSON."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rca.cli.common import open_store, settings_of
from rca.errors import InvalidArgument
from rca.insights import digest_render
from rca.insights.digest import DEFAULT_LIMIT, MAX_LIMIT, build
from rca.insights.digest_window import window
from rca.redaction import Redactor


class DigestFormat(StrEnum):
    """Output formats of `rca digest`."""

    md = "md"
    html = "html"
    json = "json"


def digest_command(
    ctx: typer.Context,
    since: Annotated[
        str,
        typer.Option(
            "--since",
            help="Start: a duration back from now (24h, 7d, 2w), a date (2026-03-01, UTC) or a "
            "time with an offset.",
        ),
    ] = "7d",
    until: Annotated[
        str | None,
        typer.Option("--until", help="End (not included), written like --since; default: now."),
    ] = None,
    output_format: Annotated[
        DigestFormat, typer.Option("--format", "-f", help="md, html or json.")
    ] = DigestFormat.md,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, max=MAX_LIMIT, help="Most entries of each section."),
    ] = DEFAULT_LIMIT,
) -> int:
    """What a window brought: new incidents, finalized postmortems, new and overdue action
    items, recurrences (redacted; at most a year)."""
    settings = settings_of(ctx)
    now = datetime.now(UTC)
    start, end = window(since, until, now, ("--since", "--until"))
    if output is not None and output.is_dir():
        raise InvalidArgument(f"--output {output} is a directory")
    store = open_store(ctx)
    try:
        found = build(
            store,
            start,
            end,
            now=now,
            limit=limit,
            redactor=Redactor(ip_addresses=settings.redaction.ip_addresses),
        )
    finally:
        store.close()
    if output_format is DigestFormat.json:
        text = found.model_dump_json(indent=2) + "\n"
    elif output_format is DigestFormat.html:
        text = digest_render.page(found)
    else:
        text = digest_render.markdown(found)
    if output is None:
        typer.echo(text, nl=False)
        return 0
    _write(output, text)
    typer.echo(
        f"wrote the digest of {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC to {output}"
    )
    return 0


def _write(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (a temporary file, then a rename)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise InvalidArgument(f"cannot write {path}: {err.strerror or err}") from None


def register(app: typer.Typer) -> None:
    """Add `rca digest` to the command."""
    app.command("digest")(digest_command)
