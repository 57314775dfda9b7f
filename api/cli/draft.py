"""`rca draft`: a draft analysis of an incident file, printed as Markdown or JSON.

It wires the pieces the way the service will: the store's postmortems as history through
similar-incident search, the configured model (or `--model`), redaction from the settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rca.cli.common import ExportFormat, load_incident, settings_of
from rca.drafting import Drafter
from rca.errors import InvalidArgument
from rca.formats.draft_markdown import render_draft
from rca.llm import LlmClient, client_from_settings
from rca.redaction import Redactor
from rca.store import Store
from retrieval.history import SearchHistory, drafting_options
from retrieval.service import open_retrieval

BASELINE = "baseline"


def _say(message: str, fraction: float) -> None:
    typer.echo(f"[{fraction:4.0%}] {message}", err=True)


def draft_command(
    ctx: typer.Context,
    incident_file: Annotated[Path, typer.Argument(help="Incident JSON (or an eval case).")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="litellm model string, local/<name>, or 'baseline' for the retrieval-only "
            "drafter (default: RCA_LLM__MODEL).",
        ),
    ] = None,
    output: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="md (readable) or json.")
    ] = ExportFormat.md,
    similar: Annotated[
        int, typer.Option("--similar", min=0, max=10, help="Past postmortems to consult.")
    ] = 3,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> int:
    """Draft an analysis of an incident: summary, impact, causal chain, factors, actions."""
    settings = settings_of(ctx)
    if model is not None:
        if not model.strip():
            raise InvalidArgument("--model must not be empty")
        llm_settings = settings.llm.model_copy(update={"model": model.strip()})
        settings = settings.model_copy(update={"llm": llm_settings})
    incident = load_incident(incident_file, settings.imports.max_file_bytes)
    client: LlmClient | None = None
    if settings.llm.model != BASELINE:
        client = client_from_settings(settings)
    store = Store.open(settings)
    retrieval = open_retrieval(settings, store)
    try:
        drafter = Drafter(
            client,
            SearchHistory(retrieval.search) if similar else None,
            Redactor(ip_addresses=settings.redaction.ip_addresses),
            options=drafting_options(settings, similar_k=similar),
            embedder=retrieval.embedder,
        )
        draft = drafter.draft(incident, progress=None if quiet else _say)
    finally:
        retrieval.close()
        store.close()
        if client is not None:
            client.close()
    if output is ExportFormat.json:
        typer.echo(draft.model_dump_json(indent=2))
    else:
        typer.echo(render_draft(draft, incident), nl=False)
    return 0
