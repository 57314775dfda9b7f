"""`rca eval ...`, plugged into the rca CLI (entry point group `rca.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evals.calibration import calibrate, format_calibration, load_pairs, propose_pairs, write_pairs
from evals.draft_eval import BASELINE, RULES, load_cases, run_eval
from evals.draft_report import compare, html_report, markdown_report
from evals.from_reviews import format_stats, from_reviews
from evals.ir_metrics import FormatError, format_table
from evals.retrieval_eval import (
    SYSTEMS,
    BenchmarkFiles,
    QueryField,
    System,
    run_retrieval_eval,
    write_runs,
)
from rca.cli.common import CliHooks, settings_of
from rca.domain import Draft, Postmortem
from rca.errors import InvalidArgument, InvalidInput, Problem
from rca.formats.importer import collect_files, load_file
from rca.store import Store
from retrieval.service import make_embedder

eval_app = typer.Typer(
    help="Measure rca's quality: similar-incident retrieval and drafts.", no_args_is_help=True
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


@eval_app.command("run")
def run_command(
    ctx: typer.Context,
    cases: Annotated[
        Path, typer.Option(exists=True, file_okay=False, help="Directory of eval case JSON files.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the results (one per system).")],
    model: Annotated[
        list[str] | None, typer.Option("--model", help="A model to evaluate (repeat).")
    ] = None,
    baseline: Annotated[
        bool, typer.Option("--baseline", help="Also run the retrieval-only baseline.")
    ] = False,
    rules: Annotated[
        bool,
        typer.Option(
            "--rules",
            help="Also run the rules-only ablation: the drafting pipeline with code choosing "
            "the top-ranked candidates instead of a model.",
        ),
    ] = False,
    judge: Annotated[
        str | None, typer.Option("--judge", help="A judge model for graded root causes.")
    ] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(exists=True, help="Extra history: a directory of postmortems (.md/.json)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
) -> int:
    """Draft every case's incident and score it against the reviewed postmortem."""
    settings = settings_of(ctx)
    loaded = load_cases(cases)[:limit]
    extras = [*([BASELINE] if baseline else []), *([RULES] if rules else [])]
    systems = list(dict.fromkeys([*(model or []), *extras]))
    if not systems:
        raise InvalidArgument("give at least one --model, --baseline or --rules")
    extra = _postmortems(corpus, settings.imports.max_file_bytes) if corpus else []
    runs = run_eval(
        loaded,
        systems,
        settings,
        out,
        extra_corpus=extra,
        judge=judge,
        progress=lambda line: typer.echo(line, err=True),
    )
    for run in runs:
        typer.echo(f"{run.system}: {len(run.rows)} cases -> {run.directory}")
    typer.echo(markdown_report([run.directory for run in runs]), nl=False)
    return 0


@eval_app.command("compare")
def compare_command(
    run_a: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="A system's run dir.")
    ],
    run_b: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Another one.")],
) -> int:
    """Every metric side by side, with the paired difference and its 95% interval."""
    typer.echo(compare(run_a, run_b), nl=False)
    return 0


@eval_app.command("report")
def report_command(
    runs: Annotated[list[Path], typer.Argument(exists=True, file_okay=False, help="Run dirs.")],
    out: Annotated[Path, typer.Option(help="Directory for report.md and report.html.")],
) -> int:
    """A Markdown summary and a self-contained HTML report with plots, readable offline."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown_report(runs), encoding="utf-8")
    (out / "report.html").write_text(html_report(runs), encoding="utf-8")
    typer.echo(f"wrote {out / 'report.md'} and {out / 'report.html'}")
    return 0


@eval_app.command("from-reviews")
def from_reviews_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Directory for cases/ and drafts/.")],
) -> int:
    """Eval cases from finalized drafts, and how reviewers treated each section."""
    store = Store.open(settings_of(ctx))
    try:
        result = from_reviews(store, out)
    finally:
        store.close()
    typer.echo(f"{len(result.cases)} cases from finalized drafts -> {out / 'cases'}")
    typer.echo(format_stats(result.stats), nl=False)
    return 0


@eval_app.command("pairs")
def pairs_command(
    ctx: typer.Context,
    cases: Annotated[
        Path, typer.Option(exists=True, file_okay=False, help="Directory of eval case JSON files.")
    ],
    run_dir: Annotated[
        Path, typer.Option("--run", exists=True, file_okay=False, help="A system's run dir.")
    ],
    out: Annotated[Path, typer.Option(help="JSON-lines file of unlabelled pairs to write.")],
) -> int:
    """Propose (drafted, reviewed) action and factor pairs to label for `rca eval calibrate`:
    each drafted item with its two nearest reviewed items, shuffled, cosines not shown."""
    loaded = load_cases(cases)
    drafts = {
        path.stem: Draft.model_validate_json(path.read_text(encoding="utf-8"))
        for path in sorted((run_dir / "drafts").glob("*.json"))
    }
    if not drafts:
        raise InvalidArgument(f"{run_dir} has no drafts/: give a run dir from `rca eval run`")
    proposed = propose_pairs(loaded, drafts, make_embedder(settings_of(ctx)))
    write_pairs(out, proposed)
    typer.echo(f'{len(proposed)} pairs to label -> {out} (set each "same" to true or false)')
    return 0


@eval_app.command("calibrate")
def calibrate_command(
    ctx: typer.Context,
    pairs: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Labelled pairs (JSON lines).")
    ],
    cases: Annotated[
        list[Path],
        typer.Option(exists=True, file_okay=False, help="Case directories the pairs refer to."),
    ],
) -> int:
    """The similarity threshold for matching action items and factors that agrees best with
    hand-labelled pairs, and the agreement at each threshold."""
    by_id = {case.id: case for directory in cases for case in load_cases(directory)}
    result = calibrate(load_pairs(pairs), by_id, make_embedder(settings_of(ctx)))
    typer.echo(format_calibration(result), nl=False)
    typer.echo(
        f"chosen threshold {result.best.threshold:.2f}: agreement {result.best.agreement:.3f}, "
        f"kappa {result.best.kappa:.3f}"
    )
    return 0


def _postmortems(directory: Path, max_bytes: int) -> list[Postmortem]:
    files, problems = collect_files([directory])
    found: list[Postmortem] = []
    for path in files:
        try:
            found.extend(d for d in load_file(path, max_bytes) if isinstance(d, Postmortem))
        except InvalidInput as err:
            problems.extend(err.problems)
    if problems:
        raise InvalidInput(problems)
    return found


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
