"""Writing a postmortem in the Markdown format (docs/markdown-format.md).

`to_markdown` writes the sections in their fixed order, escaping free text and table cells so
that `rca.formats.markdown_parse.parse_markdown` reads the output back to the same value.
"""

from __future__ import annotations

from typing import Any

import yaml

from rca.domain import Postmortem
from rca.formats.markdown_syntax import (
    ACTION_COLUMNS,
    FREE_TEXT_SECTIONS,
    LESSON_HEADINGS,
    SECTION_ORDER,
    escape_cell,
    escape_free_line,
)


def _front_matter(pm: Postmortem) -> str:
    front: dict[str, Any] = {"id": pm.id, "title": pm.title}
    if pm.date is not None:
        front["date"] = pm.date.isoformat()
    if pm.severity is not None:
        front["severity"] = pm.severity.value
    if pm.services:
        front["services"] = list(pm.services)
    if pm.tags:
        front["tags"] = list(pm.tags)
    if pm.incident_id is not None:
        front["incident_id"] = pm.incident_id
    dumped = yaml.safe_dump(
        front, sort_keys=False, allow_unicode=True, default_flow_style=None, width=10_000
    )
    return f"---\n{dumped}---\n"


def _free(text: str) -> str:
    return "\n".join(escape_free_line(line) for line in text.split("\n"))


def to_markdown(pm: Postmortem) -> str:
    """Write a postmortem as Markdown; `parse_markdown` reads it back to the same value."""
    data = pm.model_dump(mode="json")
    parts = [_front_matter(pm), f"\n# {pm.title}\n"]

    def section(title: str, body: str) -> None:
        parts.append(f"\n## {title}\n\n{body}\n")

    for name, title in SECTION_ORDER:
        if name in FREE_TEXT_SECTIONS:
            value = getattr(pm, name)
            if value:
                section(title, _free(value))
        elif name == "root_causes" and pm.root_causes:
            section(title, "\n".join(f"- {cause}" for cause in pm.root_causes))
        elif name == "contributing_factors" and pm.contributing_factors:
            section(
                title,
                "\n".join(f"- [{f.category.value}] {f.text}" for f in pm.contributing_factors),
            )
        elif name == "causal_chain" and pm.causal_chain:
            lines = []
            for node in pm.causal_chain:
                arrow = f" → {', '.join(node.leads_to)}" if node.leads_to else ""
                lines.append(f"- {node.id} ({node.kind.value}){arrow}: {node.text}")
            section(title, "\n".join(lines))
        elif name == "timeline" and pm.timeline:
            section(title, "\n".join(f"- {e['at']} — {e['text']}" for e in data["timeline"]))
        elif name == "action_items" and pm.action_items:
            rows = [
                "| " + " | ".join(ACTION_COLUMNS) + " |",
                "|" + "---|" * len(ACTION_COLUMNS),
            ]
            for item in pm.action_items:
                cells = [
                    item.text,
                    item.kind.value,
                    item.priority.value,
                    item.owner or "",
                    item.status.value,
                ]
                rows.append("| " + " | ".join(escape_cell(c) for c in cells) + " |")
            section(title, "\n".join(rows))
        elif name == "lessons" and not pm.lessons.is_empty():
            blocks = []
            for key, heading in LESSON_HEADINGS:
                items: list[str] = getattr(pm.lessons, key)
                if items:
                    blocks.append(f"### {heading}\n\n" + "\n".join(f"- {i}" for i in items))
            section(title, "\n\n".join(blocks))
    return "".join(parts)
