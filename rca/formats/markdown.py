"""Postmortems as Markdown with YAML front matter (see docs/markdown-format.md).

`parse_markdown` turns the text into plain data plus a map from field paths to line numbers,
so that validation errors can name the line; `to_markdown` writes the same shape back, so that
export → import is lossless.

This module is the format's front door; the work is done in three modules:

- `markdown_syntax`: the shared vocabulary -- sections and their order, headings, front matter
  keys, action-table columns, and the escapes of free text and table cells;
- `markdown_parse`: reading, with line numbers for errors (`parse_markdown`, `Parsed`);
- `markdown_render`: writing (`to_markdown`).
"""

from __future__ import annotations

from rca.formats.markdown_parse import Loc, Parsed, parse_markdown, yaml_to_plain
from rca.formats.markdown_render import to_markdown
from rca.formats.markdown_syntax import (
    ACTION_COLUMNS,
    FREE_TEXT_SECTIONS,
    FRONT_MATTER_KEYS,
    LESSON_HEADINGS,
    SECTION_ORDER,
    escape_cell,
    escape_free_line,
    split_cells,
    unescape_free_line,
)

__all__ = [
    "ACTION_COLUMNS",
    "FREE_TEXT_SECTIONS",
    "FRONT_MATTER_KEYS",
    "LESSON_HEADINGS",
    "SECTION_ORDER",
    "Loc",
    "Parsed",
    "escape_cell",
    "escape_free_line",
    "parse_markdown",
    "split_cells",
    "to_markdown",
    "unescape_free_line",
    "yaml_to_plain",
]
