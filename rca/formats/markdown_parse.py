"""Reading the postmortem Markdown format (docs/markdown-format.md) into plain data.

`parse_markdown` returns a `Parsed`: the front matter and sections as plain data (dicts, lists,
strings; pydantic validates them later) plus a map from field paths to line numbers, so that
validation errors can name the line. Format errors are collected, all of them, and raised as one
`InvalidInput`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from rca.errors import InvalidInput, Problem
from rca.formats.markdown_syntax import (
    ACTION_COLUMNS,
    FREE_TEXT_SECTIONS,
    FRONT_MATTER_KEYS,
    LESSON_HEADINGS,
    SECTION_ORDER,
    split_cells,
    unescape_free_line,
)

Loc = tuple[str | int, ...]  # a field path: keys and list indices, as pydantic reports them

_H1 = re.compile(r"^#([ \t].*)?$")
_H2 = re.compile(r"^##[ \t]+(?P<title>.*?)[ \t]*#*[ \t]*$")
_H3 = re.compile(r"^###[ \t]+(?P<title>.*?)[ \t]*#*[ \t]*$")
_BULLET = re.compile(r"^[-*+][ \t]+(?P<text>.*)$")
_FACTOR = re.compile(r"^\[(?P<category>[^\]]*)\][ \t]*(?P<text>.*)$")
_NODE = re.compile(
    r"^(?P<id>[^\s(]+)[ \t]+\((?P<kind>[^)]*)\)"
    r"(?:[ \t]*(?:→|->)[ \t]*(?P<to>[^:]*?))?[ \t]*:[ \t]+(?P<text>.*)$"
)
_TIMELINE = re.compile(r"^(?P<at>\S+)[ \t]+(?:\u2014|\u2013|-)[ \t]+(?P<text>.*)$")
_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


@dataclass
class Parsed:
    """A document parsed into plain data, with the line each field path came from."""

    data: dict[str, Any]
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """The line of the longest known prefix of `loc`."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None


class _Collector:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def add(self, line: int | None, reason: str) -> None:
        self.problems.append(Problem(reason=reason, path=self.path, line=line))


def yaml_to_plain(node: yaml.Node, loc: Loc, lines: dict[Loc, int], first_line: int) -> Any:
    """Turn a composed YAML node into plain data, every scalar a string (or None for null).

    Scalars stay strings so that `id: 2024` or `title: yes` mean what they say; pydantic then
    parses dates and enums. The line of every node is recorded under its path.
    """
    lines[loc] = node.start_mark.line + first_line
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:null":
            return None
        return node.value
    if isinstance(node, yaml.SequenceNode):
        return [
            yaml_to_plain(item, (*loc, index), lines, first_line)
            for index, item in enumerate(node.value)
        ]
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in result:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                )
            result[key] = yaml_to_plain(value_node, (*loc, key), lines, first_line)
        return result
    raise yaml.MarkedYAMLError(problem="unsupported YAML node", problem_mark=node.start_mark)


def _parse_front_matter(all_lines: list[str], parsed: Parsed, problems: _Collector) -> int | None:
    """Parse the front matter into `parsed.data`; return the index of the first body line."""
    if not all_lines or all_lines[0].strip() != "---":
        problems.add(1, "missing YAML front matter (the file must start with a '---' line)")
        return None
    end = next(
        (i for i in range(1, len(all_lines)) if all_lines[i].rstrip() in ("---", "...")), None
    )
    if end is None:
        problems.add(1, "YAML front matter is not closed with a '---' line")
        return None
    text = "\n".join(all_lines[1:end])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        front = {} if node is None else yaml_to_plain(node, (), parsed.lines, 2)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 2 if mark is not None else 2
        problems.add(line, f"invalid YAML front matter: {err.problem or err}")
        return None
    except yaml.YAMLError as err:
        problems.add(2, f"invalid YAML front matter: {err}")
        return None
    if not isinstance(front, dict):
        problems.add(2, "YAML front matter must be a mapping of keys to values")
        return None
    for key, value in front.items():
        if key not in FRONT_MATTER_KEYS:
            allowed = ", ".join(FRONT_MATTER_KEYS)
            problems.add(parsed.lines.get((key,)), f"unknown front matter key {key!r} ({allowed})")
        elif value is not None:
            parsed.data[key] = value
    return end + 1


def _bullets(
    body: list[tuple[int, str]], section: str, problems: _Collector
) -> list[tuple[int, str]]:
    """Bullet items of a list section, continuation lines (indented) folded in."""
    items: list[tuple[int, str]] = []
    for number, raw in body:
        if not raw.strip():
            continue
        match = _BULLET.match(raw)
        if match:
            items.append((number, match.group("text").strip()))
        elif raw[:1] in (" ", "\t") and items:
            first, text = items[-1]
            items[-1] = (first, f"{text} {raw.strip()}")
        else:
            problems.add(number, f"{section}: expected a '- ' list item, got {raw.strip()[:60]!r}")
    return items


def _parse_action_table(
    body: list[tuple[int, str]], parsed: Parsed, problems: _Collector
) -> list[dict[str, Any]]:
    rows = [(n, raw) for n, raw in body if raw.strip()]
    if not rows:
        return []
    header_line, header = rows[0]
    columns = [c.lower() for c in split_cells(header)]
    if columns != [c.lower() for c in ACTION_COLUMNS]:
        problems.add(
            header_line,
            "Action Items: the table must have the columns " + " | ".join(ACTION_COLUMNS),
        )
        return []
    if len(rows) < 2 or not _TABLE_SEPARATOR.match(rows[1][1]):
        problems.add(header_line, "Action Items: the header row must be followed by |---| row")
        return []
    items: list[dict[str, Any]] = []
    for number, raw in rows[2:]:
        if not raw.lstrip().startswith("|"):
            problems.add(number, "Action Items: expected a table row starting with '|'")
            continue
        cells = split_cells(raw)
        if len(cells) != len(ACTION_COLUMNS):
            problems.add(
                number, f"Action Items: expected {len(ACTION_COLUMNS)} cells, got {len(cells)}"
            )
            continue
        text, kind, priority, owner, status = cells
        item: dict[str, Any] = {"text": text, "kind": kind}
        if priority:
            item["priority"] = priority
        if owner:
            item["owner"] = owner
        if status:
            item["status"] = status
        parsed.lines[("action_items", len(items))] = number
        items.append(item)
    return items


def _split_by_headings(
    body: list[tuple[int, str]],
    heading: re.Pattern[str],
    known: list[tuple[str, str]],
    context: str,
    loc: Loc,
    parsed: Parsed,
    problems: _Collector,
) -> dict[str, list[tuple[int, str]]]:
    """Group lines under the known headings; report unknown, repeated and stray ones.

    Text before the first heading may only be blank (or a `# Title` at the top level).
    """
    by_title = {title.lower(): name for name, title in known}
    blocks: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    skipping = False  # under an unknown heading, already reported
    for number, raw in body:
        match = heading.match(raw)
        if match:
            title = match.group("title").strip()
            name = by_title.get(title.lower())
            if name is None:
                names = ", ".join(t for _, t in known)
                problems.add(number, f"{context}unknown heading {title!r} (known: {names})")
                current, skipping = None, True
                continue
            if name in blocks:
                problems.add(number, f"{context}heading {title!r} appears twice")
            current, skipping = name, False
            blocks[name] = []
            parsed.lines[(*loc, name)] = number
        elif current is not None:
            blocks[current].append((number, raw))
        elif raw.strip() and not skipping and not (not loc and _H1.match(raw)):
            problems.add(number, f"{context}text before the first heading")
    return blocks


def _parse_lessons(
    body: list[tuple[int, str]], parsed: Parsed, problems: _Collector
) -> dict[str, list[str]]:
    blocks = _split_by_headings(
        body, _H3, LESSON_HEADINGS, "Lessons Learned: ", ("lessons",), parsed, problems
    )
    lessons: dict[str, list[str]] = {}
    for name, block in blocks.items():
        items = _bullets(block, "Lessons Learned", problems)
        for index, (number, _text) in enumerate(items):
            parsed.lines[("lessons", name, index)] = number
        if items:
            lessons[name] = [text for _, text in items]
    return lessons


def _parse_section(
    name: str, body: list[tuple[int, str]], parsed: Parsed, problems: _Collector
) -> Any:
    if name in FREE_TEXT_SECTIONS:
        return "\n".join(unescape_free_line(raw) for _, raw in body).strip() or None
    if name == "action_items":
        return _parse_action_table(body, parsed, problems)
    if name == "lessons":
        return _parse_lessons(body, parsed, problems)
    values: list[Any] = []
    for number, text in _bullets(body, dict(SECTION_ORDER)[name], problems):
        parsed.lines[(name, len(values))] = number
        values.append(_parse_item(name, number, text, problems))
    return values


def _parse_item(name: str, number: int, text: str, problems: _Collector) -> Any:
    if name == "root_causes":
        return text
    if name == "contributing_factors":
        match = _FACTOR.match(text)
        if not match:
            problems.add(number, "Contributing Factors: expected '- [category] text'")
            return {"text": text, "category": ""}
        return {"category": match.group("category").strip(), "text": match.group("text")}
    if name == "causal_chain":
        match = _NODE.match(text)
        if not match:
            problems.add(number, "Causal Chain: expected '- ID (kind) → ID, ID: text'")
            return {"id": "", "kind": "", "text": text}
        targets = match.group("to") or ""
        return {
            "id": match.group("id"),
            "kind": match.group("kind").strip(),
            "leads_to": [t.strip() for t in targets.split(",") if t.strip()],
            "text": match.group("text"),
        }
    match = _TIMELINE.match(text)  # timeline
    if not match:
        problems.add(number, "Timeline: expected '- 2024-03-02T10:01:40Z — text'")
        return {"at": "", "text": text}
    return {"at": match.group("at"), "text": match.group("text")}


def parse_markdown(text: str, path: str | None = None) -> Parsed:
    """Parse a postmortem in Markdown into plain data and line numbers; raise on format errors."""
    problems = _Collector(path)
    parsed = Parsed(data={})
    all_lines = text.split("\n")
    start = _parse_front_matter(all_lines, parsed, problems)
    if start is None:
        raise InvalidInput(problems.problems)
    body = [(index + 1, all_lines[index]) for index in range(start, len(all_lines))]
    sections = _split_by_headings(body, _H2, SECTION_ORDER, "", (), parsed, problems)
    for name, body in sections.items():
        value = _parse_section(name, body, parsed, problems)
        if value not in (None, [], {}):
            parsed.data[name] = value
    if problems.problems:
        raise InvalidInput(problems.problems)
    return parsed
