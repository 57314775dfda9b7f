"""The vocabulary of the postmortem Markdown format (docs/markdown-format.md), shared by the
parser (`rca.formats.markdown_parse`) and the writer (`rca.formats.markdown_render`).

Which sections exist and in which order, their headings, the front matter keys, the columns of
the action-item table, and the escapes that keep free text and table cells readable back.
"""

from __future__ import annotations

FREE_TEXT_SECTIONS = {
    "summary": "Summary",
    "impact": "Impact",
    "trigger": "Trigger",
    "detection": "Detection",
    "resolution": "Resolution",
}
SECTION_ORDER = [
    ("summary", "Summary"),
    ("impact", "Impact"),
    ("trigger", "Trigger"),
    ("root_causes", "Root Causes"),
    ("contributing_factors", "Contributing Factors"),
    ("causal_chain", "Causal Chain"),
    ("detection", "Detection"),
    ("resolution", "Resolution"),
    ("timeline", "Timeline"),
    ("action_items", "Action Items"),
    ("lessons", "Lessons Learned"),
]
LESSON_HEADINGS = [
    ("went_well", "What went well"),
    ("went_wrong", "What went wrong"),
    ("lucky", "Where we got lucky"),
]
FRONT_MATTER_KEYS = ("id", "title", "date", "severity", "services", "tags", "incident_id")
ACTION_COLUMNS = ("Action", "Kind", "Priority", "Owner", "Status")


def escape_free_line(line: str) -> str:
    """Protect a free-text line that would read as a heading (or an escape) on import."""
    return "\\" + line if line.startswith(("#", "\\")) else line


def unescape_free_line(line: str) -> str:
    """Undo `escape_free_line`."""
    if line.startswith("\\") and line[1:2] in ("#", "\\"):
        return line[1:]
    return line


def escape_cell(text: str) -> str:
    """Escape a table cell's backslashes and pipes."""
    return text.replace("\\", "\\\\").replace("|", "\\|")


def split_cells(row: str) -> list[str]:
    """Split a Markdown table row on unescaped pipes; `\\|` and `\\\\` are escapes."""
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    cells: list[str] = []
    current: list[str] = []
    index = 0
    closed = False
    while index < len(row):
        char = row[index]
        if char == "\\" and row[index + 1 : index + 2] in ("|", "\\"):
            current.append(row[index + 1])
            index += 2
            continue
        if char == "|":
            cells.append("".join(current).strip())
            current = []
            closed = True
        else:
            current.append(char)
            closed = False
        index += 1
    if current or not closed:
        tail = "".join(current).strip()
        if tail or not closed:
            cells.append(tail)
    return cells
