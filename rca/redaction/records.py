"""Redaction of whole records: an incident or a postmortem with every text field redacted
(ids, times and enums untouched), always a valid record of the same kind."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from rca.domain import Incident, Postmortem
from rca.redaction.text import CUT_MARK, PLACEHOLDER, PlaceholderTable, RedactionFailed, Redactor

_NOT_TEXT = frozenset(
    {"id", "at", "started_at", "detected_at", "mitigated_at", "resolved_at", "severity", "kind"}
    | {"incident_id", "date", "category", "status", "priority", "leads_to"}
)


def redact_postmortem(pm: Postmortem, redactor: Redactor, table: PlaceholderTable) -> Postmortem:
    """A postmortem with every text field redacted, placeholders taken from `table`."""
    data = _redact_tree(pm.model_dump(mode="json"), redactor, table)
    return _validated(Postmortem, data, "postmortem")


def redact_incident(
    incident: Incident, redactor: Redactor, table: PlaceholderTable | None = None
) -> tuple[Incident, PlaceholderTable]:
    """The incident with every text field redacted (ids, times and enums untouched), and the
    table of placeholders used, so that later text about the same incident stays consistent."""
    table = table if table is not None else PlaceholderTable()
    data = _redact_tree(incident.model_dump(mode="json"), redactor, table)
    return _validated(Incident, data, "incident"), table


Record = TypeVar("Record", Incident, Postmortem)


def _validated(model: type[Record], data: Any, what: str) -> Record:
    """`data`, a redacted copy of a valid record, validated as `model`. A text the placeholders
    made longer than its field allows is cut to fit (`CUT_MARK` says so): what is cut is
    redacted text, so nothing leaks, and a record that was accepted always has a redacted view.
    Any other error means a placeholder broke a field's format: refuse, never leak."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        if not _cut_to_fit(data, err):
            raise RedactionFailed(f"redacted {what} does not validate: {err}") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise RedactionFailed(f"redacted {what} does not validate: {err}") from None


def _cut_to_fit(data: Any, err: ValidationError) -> bool:
    """Cut, in place, every text of `data` that `err` finds too long; False, with nothing
    changed, if `err` holds any other error or points where no text is."""
    cuts: list[tuple[Any, str | int, str, int]] = []
    for error in err.errors(include_url=False):
        limit = (error.get("ctx") or {}).get("max_length")
        if error["type"] != "string_too_long" or not isinstance(limit, int):
            return False
        *path, last = error["loc"]
        try:
            parent = data
            for step in path:
                parent = parent[step]
            text = parent[last]
        except (KeyError, IndexError, TypeError):
            return False
        if not isinstance(text, str):
            return False
        cuts.append((parent, last, text, limit))
    for parent, key, text, limit in cuts:
        parent[key] = _cut(text, limit)
    return bool(cuts)


def _cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters ending with `CUT_MARK` (or an ellipsis, for a
    field too short for it), never in the middle of a placeholder."""
    mark = CUT_MARK if limit >= 2 * len(CUT_MARK) else "\u2026"
    end = limit - len(mark)
    for found in PLACEHOLDER.finditer(text, max(0, end - 24), end + 24):
        if found.start() < end < found.end():
            end = found.start()
    return text[:end].rstrip() + mark


_FREE_FORM = frozenset({"labels"})
"""Mappings whose keys are the submitter's, not the schema's: every value in them is text,
whatever its key is called (a label named `status` or `id` is redacted like any other)."""


def _redact_tree(data: object, redactor: Redactor, table: PlaceholderTable) -> object:
    def walk(value: object, key: str | None) -> object:
        if isinstance(value, str):
            return value if key in _NOT_TEXT else redactor.redact(value, table)
        if isinstance(value, list):
            return [walk(item, key) for item in value]
        if isinstance(value, dict):
            if key in _FREE_FORM:
                return {k: walk(v, None) for k, v in value.items()}
            return {k: walk(v, k) for k, v in value.items()}
        return value

    return walk(data, None)
