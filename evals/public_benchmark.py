"""The public-postmortems retrieval benchmark: its files, and the protocol's condensed ranking.

The data is not ours and is never copied into this repository: these loaders read it where it
lies (``../shared/data/public-postmortems/``) at run time. The files are:

- ``corpus.jsonl`` -- one write-up a line; we keep id, title, summary, body, company, product
  and year, and ignore the rest (source, url, date, ...);
- ``queries.jsonl`` -- one query a line: ``qid`` (a corpus id), ``class``, ``query``,
  ``query_title_summary``, ``exclude`` (other corpus ids describing the same event);
- ``qrels.txt`` -- TREC qrels, read with `evals.ir_metrics.read_qrels`;
- ``judged_docs.txt`` -- one judged corpus id a line.

Protocol: rank the whole corpus with the ``query`` text, then `condense` the ranking (drop the
query's own id and its ``exclude`` ids, keep only judged ids), then score it with
`evals.ir_metrics.evaluate`. A malformed line raises `FormatError` naming file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evals.ir_metrics import FormatError

_Model = TypeVar("_Model", bound=BaseModel)


class CorpusDoc(BaseModel):
    """One public incident write-up, reduced to what retrieval needs."""

    # The file carries more keys (source, sources, url, date); dropping them is deliberate.
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1)
    """Corpus id; query ids and qrels refer to it."""
    title: str = ""
    """Title; empty when the file has none."""
    summary: str = ""
    """Short summary; empty when the file has none."""
    body: str = ""
    """Full text; empty when the file has none."""
    company: str | None = None
    """The company that had the incident, when known."""
    product: str | None = None
    """The product or service affected, when known."""
    year: int | None = None
    """Year of the incident, when known (the file writes it as a string)."""

    @field_validator("title", "summary", "body", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        return "" if value is None else value


class BenchQuery(BaseModel):
    """One benchmark query: a corpus write-up, reduced to its symptoms."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    qid: str = Field(min_length=1)
    """The corpus id of the write-up the query was made from."""
    query_class: str = Field(alias="class", min_length=1)
    """Root-cause class (``class`` in the file), the unit of the macro mean."""
    query: str
    """Symptom-only text (title, product, impact, symptoms; no cause): what a retriever gets."""
    query_title_summary: str
    """Title and summary, which may reveal the cause (for diagnostics, not the protocol)."""
    exclude: tuple[str, ...] = ()
    """Other corpus ids describing the same event; dropped from the ranking."""


def load_corpus(path: Path | str) -> list[CorpusDoc]:
    """Read ``corpus.jsonl``; a repeated id is an error."""
    docs = _load_jsonl(path, CorpusDoc)
    _refuse_repeats(path, [(n, d.id) for n, d in docs], "corpus id")
    return [d for _, d in docs]


def load_queries(path: Path | str) -> list[BenchQuery]:
    """Read ``queries.jsonl``; a repeated qid is an error."""
    queries = _load_jsonl(path, BenchQuery)
    _refuse_repeats(path, [(n, q.qid) for n, q in queries], "qid")
    return [q for _, q in queries]


def load_judged(path: Path | str) -> set[str]:
    """Read ``judged_docs.txt``: one corpus id a line, blank lines skipped."""
    judged: set[str] = set()
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if len(fields) > 1:
                raise FormatError(path, number, f"expected one id, got {len(fields)} fields")
            judged.update(fields)
    return judged


def query_classes(queries: Iterable[BenchQuery]) -> dict[str, str]:
    """qid -> class, the query set `evals.ir_metrics.evaluate` averages over."""
    return {q.qid: q.query_class for q in queries}


def condense(
    qid: str,
    ranking: Sequence[tuple[str, float]],
    exclude: Iterable[str],
    judged: set[str] | frozenset[str],
) -> list[tuple[str, float]]:
    """The protocol's condensed ranking: the query's own id and its ``exclude`` ids dropped,
    only ``judged`` ids kept, order and scores unchanged.

    Unjudged documents are removed rather than counted as misses: nobody knows whether they
    are relevant.
    """
    dropped = {qid, *exclude}
    return [(docid, score) for docid, score in ranking if docid in judged and docid not in dropped]


def _load_jsonl(path: Path | str, model: type[_Model]) -> list[tuple[int, _Model]]:
    """(line number, record) for every non-blank line."""
    records: list[tuple[int, _Model]] = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data: Any = json.loads(line)
            except json.JSONDecodeError as error:
                raise FormatError(path, number, f"not JSON: {error.msg}") from None
            if not isinstance(data, dict):
                raise FormatError(path, number, "expected a JSON object")
            try:
                records.append((number, model.model_validate(data)))
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "<object>"
                raise FormatError(path, number, f"{where}: {first['msg']}") from None
    return records


def _refuse_repeats(path: Path | str, ids: list[tuple[int, str]], what: str) -> None:
    first_line: dict[str, int] = {}
    for number, ident in ids:
        if ident in first_line:
            raise FormatError(
                path, number, f"{what} {ident!r} repeated (first on line {first_line[ident]})"
            )
        first_line[ident] = number
