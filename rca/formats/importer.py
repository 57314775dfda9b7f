"""Reading postmortems, incidents and eval cases from files, with errors that name file and line.

A JSON file holds a postmortem, an incident (it has `started_at`) or an eval case (exactly the
keys `id`, `incident`, `reviewed`: both parts are read). A Markdown file holds one postmortem.
Each file is saved in its own transaction: a bad file is reported and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rca.domain import Incident, Postmortem
from rca.errors import InvalidInput, Problem, RcaError
from rca.formats.markdown_parse import Loc, Parsed, parse_markdown, yaml_to_plain
from rca.store import Document, SaveResult, Store

M = TypeVar("M", bound=BaseModel)

MARKDOWN_SUFFIXES = (".md", ".markdown")
JSON_SUFFIXES = (".json",)
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES + JSON_SUFFIXES
CASE_KEYS = {"id", "incident", "reviewed"}


@dataclass
class ImportReport:
    """What an import did: one result per saved document, one problem per bad input."""

    saved: list[tuple[Path, SaveResult]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files_read: int = 0

    @property
    def ok(self) -> bool:
        """True when every file was read and saved."""
        return not self.problems


def _describe(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required field missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _location(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_problems(
    err: ValidationError, parsed: Parsed, path: str, prefix: Loc = ()
) -> list[Problem]:
    """Turn a pydantic error into problems with the line each one points at."""
    problems = []
    for error in err.errors(include_url=False):
        loc: Loc = (*prefix, *error["loc"])
        problems.append(
            Problem(
                reason=_describe(error),
                path=path,
                line=parsed.line_of(loc),
                location=_location(loc) or None,
            )
        )
    return problems


def _json_lines(text: str) -> dict[Loc, int]:
    """Line numbers of every path in a JSON document (best effort, through the YAML composer)."""
    lines: dict[Loc, int] = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            yaml_to_plain(node, (), lines, 1)
    except yaml.YAMLError:
        return {}
    return lines


def _validate(model: type[M], data: Any, parsed: Parsed, path: str, prefix: Loc = ()) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise InvalidInput(validation_problems(err, parsed, path, prefix)) from err


def parse_json_documents(text: str, path: str) -> list[Document]:
    """Read a JSON postmortem, incident or eval case."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidInput([Problem(f"malformed JSON: {err.msg}", path, err.lineno)]) from err
    parsed = Parsed(data=data if isinstance(data, dict) else {}, lines=_json_lines(text))
    if not isinstance(data, dict):
        raise InvalidInput([Problem("expected a JSON object", path, 1)])
    if set(data) == CASE_KEYS:
        problems: list[Problem] = []
        documents: list[Document] = []
        try:
            documents.append(_validate(Postmortem, data["reviewed"], parsed, path, ("reviewed",)))
        except InvalidInput as err:
            problems.extend(err.problems)
        try:
            documents.append(_validate(Incident, data["incident"], parsed, path, ("incident",)))
        except InvalidInput as err:
            problems.extend(err.problems)
        if problems:
            raise InvalidInput(problems)
        return documents
    if "incident" in data and "reviewed" in data:
        raise InvalidInput(
            [Problem("an eval case has exactly the keys id, incident, reviewed", path, 1)]
        )
    if "started_at" in data:
        return [_validate(Incident, data, parsed, path)]
    return [_validate(Postmortem, data, parsed, path)]


def parse_markdown_postmortem(text: str, path: str) -> Postmortem:
    """Read a Markdown postmortem, checking both the layout and the content."""
    parsed = parse_markdown(text, path)
    return _validate(Postmortem, parsed.data, parsed, path)


def read_text(path: Path, max_bytes: int) -> str:
    """A file's text, refusing huge, empty, binary and non-UTF-8 files."""
    name = str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InvalidInput(
                [Problem(f"file is {size} bytes, more than the limit of {max_bytes}", name)]
            )
        raw = path.read_bytes()
    except OSError as err:
        raise InvalidInput([Problem(f"cannot read: {err.strerror or err}", name)]) from err
    if len(raw) > max_bytes:  # grew between stat and read
        raise InvalidInput([Problem(f"file is more than the limit of {max_bytes} bytes", name)])
    if b"\x00" in raw[:8192]:
        raise InvalidInput([Problem("binary file (contains NUL bytes), not text", name)])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InvalidInput([Problem("not UTF-8 text (binary file?)", name, line)]) from err
    if not text.strip():
        raise InvalidInput([Problem("empty file", name)])
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_file(path: Path, max_bytes: int) -> list[Document]:
    """Every document in one file."""
    text = read_text(path, max_bytes)
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        return [parse_markdown_postmortem(text, str(path))]
    return parse_json_documents(text, str(path))


def collect_files(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """Files to import: given files, and supported files under given directories (recursive)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in SUPPORTED_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                problems.append(Problem("directory holds no .md or .json files", str(path)))
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                problems.append(
                    Problem(
                        f"unsupported file type {path.suffix or '(none)'!r}; use .md or .json",
                        str(path),
                    )
                )
            else:
                files.append(path)
        else:
            problems.append(Problem("no such file or directory", str(path)))
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, problems


def import_paths(store: Store, paths: Iterable[Path], max_bytes: int) -> ImportReport:
    """Import every file under `paths`, each in its own transaction; keep going past bad files."""
    files, problems = collect_files(paths)
    report = ImportReport(problems=problems)
    for path in files:
        report.files_read += 1
        try:
            documents = load_file(path, max_bytes)
            results = store.save(documents, source=f"import:{path.name}")
        except InvalidInput as err:
            report.problems.extend(err.problems)
            continue
        except RcaError as err:
            report.problems.append(Problem(str(err), str(path)))
            continue
        report.saved.extend((path, result) for result in results)
    return report
