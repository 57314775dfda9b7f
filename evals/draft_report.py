"""`rca eval compare` and `rca eval report`: side-by-side tables, Markdown and offline HTML.

The HTML report is one self-contained file: plots are embedded as inline SVG made with
matplotlib (Agg backend), no script and no external resource, so it opens offline.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals import draft_scores as dm
from evals.draft_eval import read_run, summarize

HEADLINE = (
    "summary.rouge_l",
    "summary.similarity",
    "root_cause.best_match",
    "root_cause.judge",
    "chain.node_f1",
    "chain.edge_f1",
    "chain.has_root_and_impact",
    "factors.f1",
    "actions.f1",
    "grounding.cited_ids_exist",
    "grounding.uncited_share",
)
"""Metrics shown first, in this order (the others follow alphabetically)."""


def _metric_names(rows: Sequence[dict[str, Any]]) -> list[str]:
    found = {name for row in rows for name in row["scores"]}
    first = [m for m in HEADLINE if m in found]
    return first + sorted(found - set(first))


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def compare(a_dir: Path, b_dir: Path) -> str:
    """A Markdown table: every metric for run A and run B, the paired difference B - A over
    the cases both scored, and its 95% bootstrap interval."""
    rows_a, rows_b = read_run(a_dir), read_run(b_dir)
    by_case_b = {row["case"]: row for row in rows_b}
    shared = [row for row in rows_a if row["case"] in by_case_b]
    name_a = rows_a[0]["system"] if rows_a else a_dir.name
    name_b = rows_b[0]["system"] if rows_b else b_dir.name
    lines = [
        f"A = {name_a} ({len(rows_a)} cases), B = {name_b} ({len(rows_b)} cases), "
        f"{len(shared)} cases paired",
        "",
        "| metric | A | B | B - A | 95% CI | n |",
        "|---|---:|---:|---:|---|---:|",
    ]
    extra = ("latency_s", "prompt_tokens", "completion_tokens", "cost_usd")
    for name in [*_metric_names(rows_a + rows_b), *extra]:
        a_vals = [_value(row, name) for row in shared]
        b_vals = [_value(by_case_b[row["case"]], name) for row in shared]
        pairs = [
            (x, y) for x, y in zip(a_vals, b_vals, strict=True) if x is not None and y is not None
        ]
        if not pairs:
            continue
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        diff, low, high = dm.paired_bootstrap_ci(xs, ys)
        lines.append(
            f"| {name} | {_fmt(sum(xs) / len(xs))} | {_fmt(sum(ys) / len(ys))} | "
            f"{_fmt(diff)} | [{_fmt(low)}, {_fmt(high)}] | {len(pairs)} |"
        )
    return "\n".join(lines) + "\n"


def _value(row: dict[str, Any], name: str) -> float | None:
    value = row["scores"].get(name) if name in row["scores"] else row.get(name)
    return None if value is None else float(value)


def markdown_report(run_dirs: Sequence[Path]) -> str:
    """A Markdown summary of one or more runs: a metric x system table with intervals."""
    summaries = [summarize(read_run(d), read_run(d)[0]["system"]) for d in run_dirs]
    names = _metric_names([row for d in run_dirs for row in read_run(d)])
    header = "| metric | " + " | ".join(s["system"] for s in summaries) + " |"
    lines = [
        "# rca eval report",
        "",
        "Mean over cases, with the 95% bootstrap interval.",
        "",
        header,
        "|---|" + "---:|" * len(summaries),
    ]
    for name in [*names, "latency_s", "prompt_tokens", "completion_tokens", "cost_usd"]:
        cells = []
        for summary in summaries:
            metric = summary["metrics"].get(name)
            cells.append(
                "-"
                if metric is None
                else f"{_fmt(metric['mean'])} [{_fmt(metric['low'])}, {_fmt(metric['high'])}]"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    for summary in summaries:
        lines.append(
            f"- **{summary['system']}**: {summary['cases']} cases, prompt "
            f"{summary['prompt_version']}, retrieval {summary['retrieval']}, evaluators "
            f"{summary['evaluators']}"
        )
    return "\n".join(lines) + "\n"


def html_report(run_dirs: Sequence[Path]) -> str:
    """A self-contained HTML page: the Markdown table's content, bars with intervals per
    metric across runs, and a per-case heat map per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(d, read_run(d)) for d in run_dirs]
    summaries = [summarize(rows, rows[0]["system"]) for _d, rows in runs]
    names = _metric_names([r for _d, rows in runs for r in rows])
    systems = [s["system"] for s in summaries]

    figure, axis = plt.subplots(figsize=(10, max(3.0, 0.45 * len(names))))
    height = 0.8 / max(1, len(summaries))
    for index, summary in enumerate(summaries):
        means, errors_low, errors_high, positions = [], [], [], []
        for row, name in enumerate(names):
            metric = summary["metrics"].get(name)
            if metric is None:
                continue
            positions.append(row + index * height)
            means.append(metric["mean"])
            errors_low.append(metric["mean"] - metric["low"])
            errors_high.append(metric["high"] - metric["mean"])
        axis.barh(
            positions, means, height=height, xerr=[errors_low, errors_high], label=summary["system"]
        )
    axis.set_yticks([r + height * (len(summaries) - 1) / 2 for r in range(len(names))])
    axis.set_yticklabels(names)
    axis.invert_yaxis()
    axis.set_xlim(0, 1.05)
    axis.set_xlabel("mean score (95% bootstrap interval)")
    axis.legend(loc="lower right")
    bars = _svg(figure, plt)

    heatmaps = []
    for (_directory, rows), system in zip(runs, systems, strict=True):
        cases = [row["case"] for row in rows]
        grid = [[_value(row, name) for name in names] for row in rows]
        values = [[math.nan if v is None else v for v in line] for line in grid]
        figure, axis = plt.subplots(
            figsize=(max(6.0, 0.5 * len(names)), max(2.5, 0.35 * len(cases)))
        )
        image = axis.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        axis.set_xticks(range(len(names)))
        axis.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        axis.set_yticks(range(len(cases)))
        axis.set_yticklabels(cases, fontsize=7)
        axis.set_title(f"per case: {system}")
        figure.colorbar(image, ax=axis)
        heatmaps.append(_svg(figure, plt))

    table = markdown_report(run_dirs)
    body = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>rca eval report</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;"
        "font-size:.85rem}td{text-align:right}td:first-child{text-align:left}</style>",
        "</head><body><h1>rca eval report</h1>",
        f"<p>Systems: {html.escape(', '.join(systems))}.</p>",
        _table_html(table),
        "<h2>Metrics across runs</h2>",
        bars,
        "<h2>Per case</h2>",
        *heatmaps,
        "</body></html>",
    ]
    return "\n".join(body)


def _svg(figure: Any, plt: Any) -> str:
    buffer = io.StringIO()
    figure.tight_layout()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _table_html(markdown: str) -> str:
    rows = [line for line in markdown.splitlines() if line.startswith("|") and "---" not in line]
    out = ["<table>"]
    for number, line in enumerate(rows):
        cells = [c.strip() for c in line.strip("|").split("|")]
        tag = "th" if number == 0 else "td"
        out.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)
