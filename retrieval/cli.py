"""`rca similar` and `rca index ...`, plugged into the rca CLI (entry point group `rca.cli`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import Progress as RichProgress

from rca.cli.common import CliHooks, load_incident, settings_of
from rca.config import Settings
from rca.domain import Incident, Severity
from rca.domain.similar import SearchFilters, SearchMode, SearchResult
from rca.errors import InvalidArgument, InvalidInput, InvalidQuery
from rca.store import Store
from retrieval.indexer import Progress
from retrieval.lexical_shared import LexicalSync
from retrieval.service import Retrieval, open_retrieval

index_app = typer.Typer(
    help="Maintain the vector and lexical indexes. Both are derived from the store: rebuilding "
    "loses nothing.",
    no_args_is_help=True,
)


@contextmanager
def _retrieval(ctx: typer.Context) -> Iterator[Retrieval]:
    settings = settings_of(ctx)
    store = Store.open(settings)
    retrieval = open_retrieval(settings, store)
    try:
        yield retrieval
    finally:
        retrieval.close()
        store.close()


@contextmanager
def _progress(label: str) -> Iterator[Progress | None]:
    """A progress bar on a terminal; nothing when output is piped."""
    if not sys.stderr.isatty():
        yield None
        return
    with RichProgress(transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _sync_after_import(settings: Settings, store: Store) -> None:
    retrieval = open_retrieval(settings, store)
    try:
        # Lexical first: a second or so, after which every process's search finds the import.
        retrieval.search.lexical.sync()
        with _progress("indexing") as progress:
            report = retrieval.indexer.sync(progress)
    finally:
        retrieval.close()
    if report.postmortems:
        typer.echo(f"indexed {report.postmortems} postmortems ({report.chunks} chunks)")


@index_app.command("sync")
def sync_command(ctx: typer.Context) -> int:
    """Index the postmortem revisions waiting in the outbox; bring the lexical index up to
    date."""
    with _retrieval(ctx) as retrieval:
        lexical = retrieval.search.lexical.sync()
        with _progress("indexing") as progress:
            report = retrieval.indexer.sync(progress)
    rebuilt = " (the collection was missing: rebuilt it)" if report.rebuilt else ""
    typer.echo(f"indexed {report.postmortems} postmortems, {report.chunks} chunks{rebuilt}")
    _echo_lexical(lexical)
    return 0


def _echo_lexical(report: LexicalSync) -> None:
    if report.moved_aside:
        typer.echo(f"the old lexical index was unreadable; moved it to {report.moved_aside}")
    typer.echo(
        f"lexical index: {report.documents} postmortems ({report.written} written, "
        f"{report.removed} removed)"
    )


@index_app.command("rebuild")
def rebuild_command(ctx: typer.Context) -> int:
    """Build a new collection (and a new lexical index) from the store, verify, then switch."""
    with _retrieval(ctx) as retrieval:
        with _progress("rebuilding") as progress:
            report = retrieval.indexer.rebuild(progress)
        lexical = retrieval.search.lexical.rebuild()
    if report.moved_aside:
        typer.echo(f"the old index was unreadable; moved it to {report.moved_aside}")
    typer.echo(
        f"rebuilt {report.collection}: {report.postmortems} postmortems, {report.chunks} chunks"
    )
    _echo_lexical(lexical)
    return 0


@index_app.command("check")
def check_command(
    ctx: typer.Context,
    repair: Annotated[bool, typer.Option("--repair/--no-repair", help="Fix drift found.")] = True,
) -> int:
    """Compare the store with both indexes; repair drift (exit 1 if drift remains)."""
    with _retrieval(ctx) as retrieval:
        report = retrieval.indexer.check(repair=repair)
        lexical_in_sync = _check_lexical(retrieval, repair)
    typer.echo(
        f"{report.collection}: {report.expected_chunks} chunks expected, "
        f"{report.indexed_chunks} indexed"
    )
    _echo_ids(("missing", report.missing), ("stale", report.stale), ("orphaned", report.orphans))
    if report.in_sync:
        typer.echo("in sync")
    elif report.repaired:
        typer.echo("repaired" + (" by a rebuild" if report.rebuilt else ""))
    return 0 if (report.in_sync or report.repaired) and lexical_in_sync else 1


def _check_lexical(retrieval: Retrieval, repair: bool) -> bool:
    """Report the lexical index's drift (repairing it by a catch-up); whether it is in sync
    now."""
    lexical = retrieval.search.lexical
    drift = lexical.drift()
    typer.echo(f"lexical index: {drift.indexed} postmortems")
    _echo_ids(("missing", drift.missing), ("stale", drift.stale), ("orphaned", drift.orphans))
    if drift.in_sync:
        typer.echo("lexical index in sync")
        return True
    if not repair:
        return False
    lexical.sync()
    repaired = lexical.drift().in_sync
    typer.echo("lexical index repaired" if repaired else "lexical drift remains")
    return repaired


def _echo_ids(*groups: tuple[str, list[str]]) -> None:
    for label, ids in groups:
        if ids:
            shown = ", ".join(ids[:10]) + (" …" if len(ids) > 10 else "")
            typer.echo(f"{label}: {len(ids)} postmortems ({shown})")


@index_app.command("status")
def status_command(ctx: typer.Context) -> int:
    """Which collection is active, how many chunks it holds, how many revisions wait."""
    with _retrieval(ctx) as retrieval:
        name = retrieval.vectors.active_name()
        pending = retrieval.indexer.store.index_state.pending_count()
        try:
            count: int | str = retrieval.vectors.count()
        except Exception as err:  # any failure is reported, never raised
            count = f"unavailable ({err})"
    typer.echo(f"model {retrieval.embedder.model_id}, collection {name}: {count} chunks")
    typer.echo(f"{pending} revisions waiting in the outbox")
    return 0


def similar_command(
    ctx: typer.Context,
    incident: Annotated[
        Path | None, typer.Argument(help="Incident JSON (or eval case) to find history for.")
    ] = None,
    text: Annotated[str | None, typer.Option("--text", "-t", help="Free-text query.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many hits.")] = 5,
    service: Annotated[
        list[str] | None, typer.Option("--service", help="Only with this service (repeat).")
    ] = None,
    severity: Annotated[
        list[Severity] | None, typer.Option("--severity", help="Only this severity (repeat).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only on or after YYYY-MM-DD.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only on or before YYYY-MM-DD.")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only with this tag (repeat).")
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, lexical or dense.")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> int:
    """Find past postmortems similar to an incident file or a free-text query."""
    if (incident is None) == (text is None):
        raise InvalidArgument("give either an incident file or --text, not both or neither")
    if mode not in ("hybrid", "lexical", "dense"):
        raise InvalidArgument(f"--mode must be hybrid, lexical or dense, not {mode!r}")
    settings = settings_of(ctx)
    try:
        filters = SearchFilters(
            services=service or [],
            severities=severity or [],
            date_from=date.fromisoformat(since) if since else None,
            date_to=date.fromisoformat(until) if until else None,
            tags=tag or [],
        )
    except (ValueError, ValidationError) as err:
        raise InvalidArgument(f"bad filter: {err}") from err
    query: str | Incident
    if incident is not None:
        try:
            query = load_incident(incident, settings.imports.max_file_bytes)
        except InvalidInput as err:
            raise InvalidQuery(str(err.problems[0]) if err.problems else str(err)) from err
    else:
        query = text or ""
    search_mode: SearchMode = (
        "hybrid" if mode == "hybrid" else ("lexical" if mode == "lexical" else "dense")
    )
    with _retrieval(ctx) as retrieval:
        result = retrieval.search.search(query, k=k, filters=filters, mode=search_mode)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_result(result)
    return 0


def _print_result(result: SearchResult) -> None:
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    if not result.hits:
        typer.echo("no similar postmortems found")
        return
    for rank, hit in enumerate(result.hits, start=1):
        facts = " ".join(
            part
            for part in (
                hit.date.isoformat() if hit.date else "",
                hit.severity.value if hit.severity else "",
                ",".join(hit.services),
            )
            if part
        )
        typer.echo(f"{rank}. {hit.postmortem_id}  {hit.title}")
        typer.echo(f"   score {hit.score:.4f}  {facts}")
        for reason in hit.why:
            typer.echo(f"   why: {reason}")
        for section in hit.sections[:2]:
            typer.echo(f"   [{section.section}] {section.snippet}")


def register(app: typer.Typer, hooks: CliHooks) -> None:
    """Add `rca similar` and `rca index`; keep the index current after imports."""
    app.command("similar")(similar_command)
    app.add_typer(index_app, name="index")
    hooks.after_import.append(_sync_after_import)
