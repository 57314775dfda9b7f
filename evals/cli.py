"""`rca eval ...`, plugged into the rca CLI (entry point group `rca.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evals.ir_metrics import FormatError, format_table
from evals.retrieval_eval import (
    SYSTEMS,
    BenchmarkFiles,
    QueryField,
    System,
    run_retrieval_eval,
    write_runs,
)
from rca.cli import CliHooks, settings_of
from rca.errors import InvalidArgument, InvalidInput, Problem

eval_app = typer.Typer(
    help="Measure rca's quality: retrieval now, drafts later.", no_args_is_help=True
)


@eval_app.command("retrieval")
def retrieval_command(
    ctx: typer.Context,
    corpus: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="corpus.jsonl")],
    queries: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="queries.jsonl")],
    qrels: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="TREC qrels")],
    judged: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="judged document ids, one a line")
    ],
    run_out: Annotated[
        Path | None,
        typer.Option(help="Write the hybrid TREC run here, the other systems beside it."),
    ] = None,
    system: Annotated[
        list[str] | None, typer.Option("--system", help="bm25, dense, hybrid (default: all)")
    ] = None,
    query_field: Annotated[
        str, typer.Option(help="query (symptoms only, the protocol) or query_title_summary")
    ] = "query",
) -> int:
    """Index a benchmark corpus into a temporary store and score BM25, dense and hybrid search."""
    settings = settings_of(ctx)
    systems = _systems(system)
    if query_field not in ("query", "query_title_summary"):
        raise InvalidArgument(
            f"--query-field must be query or query_title_summary, not {query_field!r}"
        )
    field: QueryField = "query" if query_field == "query" else "query_title_summary"
    if run_out is not None and not run_out.parent.is_dir():
        raise InvalidArgument(f"--run-out: directory {run_out.parent} does not exist")
    try:
        report = run_retrieval_eval(
            BenchmarkFiles(corpus, queries, qrels, judged),
            settings,
            systems=systems,
            query_field=field,
            log=lambda line: typer.echo(line, err=True),
        )
    except FormatError as err:
        raise InvalidInput([Problem(err.reason, path=err.path, line=err.line)]) from None
    typer.echo(
        f"{report.documents} documents, {report.chunks} chunks, "
        f"{len(next(iter(report.runs.values())))} queries"
    )
    typer.echo(format_table({str(name): result for name, result in report.results.items()}))
    if run_out is not None:
        for path in write_runs(report, run_out):
            typer.echo(f"wrote {path}")
    return 0


def _systems(names: list[str] | None) -> list[System]:
    chosen: list[System] = []
    for name in names or list(SYSTEMS):
        match name:
            case "bm25" | "dense" | "hybrid":
                if name not in chosen:
                    chosen.append(name)
            case _:
                raise InvalidArgument(f"--system must be bm25, dense or hybrid, not {name!r}")
    return chosen


def register(app: typer.Typer, hooks: CliHooks) -> None:
    """Add `rca eval` to the CLI."""
    del hooks
    app.add_typer(eval_app, name="eval")
