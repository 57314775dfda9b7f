"""Context assembly within a token budget: which evidence a model sees, and how much of it.

Evidence competes for a fixed budget. It is chosen by what tends to explain an incident —
alerts, then deploy and config changes, then the first occurrence of each error signature
(earliest first), then other timeline events, chat, and remaining log lines — and then shown in
time order, each line tagged with its evidence id. A line longer than its cap is cut with a
visible marker; whatever does not fit is counted in a closing marker that names it by id
(a bounded number of stretches of consecutive lines), so the model (and a reviewer) knows it
exists. Everything is deterministic: the same incident and budget give the same text, byte for
byte.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rca.domain import (
    Alert,
    ChatMessage,
    Incident,
    LogLine,
    Postmortem,
    TimelineEvent,
    TimelineKind,
)
from rca.domain.similar import ERRORISH
from rca.llm.tokens import TokenCount

_VOLATILE = re.compile(r"\b[0-9a-f]{6,}\b|\d+", re.IGNORECASE)
MARKER_RUNS = 8
"""Stretches of left-out lines the closing marker names at most (it counts the others)."""


@dataclass(frozen=True)
class EvidenceLine:
    """One evidence item as the model sees it."""

    id: str
    at: datetime
    kind: str
    text: str
    priority: int


@dataclass(frozen=True)
class AssembledEvidence:
    """The evidence block and what went into it."""

    text: str
    tokens: int
    included: tuple[str, ...]
    truncated: tuple[str, ...]
    omitted: tuple[str, ...]
    """The ids left out, in time order."""


def signature(text: str) -> str:
    """An error line with its numbers and hex ids blanked, to spot repeats of one error."""
    return _VOLATILE.sub("#", text.lower()).strip()


def evidence_lines(incident: Incident) -> list[EvidenceLine]:
    """Every evidence item with its priority (lower first)."""
    lines: list[EvidenceLine] = []
    seen_signatures: set[str] = set()
    for item in sorted(incident.evidence(), key=lambda e: (e.at, e.id)):
        match item:
            case Alert():
                label = " ".join(p for p in ("alert", item.name or "", item.source or "") if p)
                lines.append(EvidenceLine(item.id, item.at, label, item.text, 0))
            case TimelineEvent():
                changes = (TimelineKind.DEPLOY, TimelineKind.CONFIG)
                priority = 1 if item.kind in changes else 3
                lines.append(EvidenceLine(item.id, item.at, item.kind.value, item.text, priority))
            case LogLine():
                priority = 5
                if ERRORISH.search(item.text):
                    sig = signature(item.text)
                    priority = 2 if sig not in seen_signatures else 5
                    seen_signatures.add(sig)
                label = " ".join(p for p in ("log", item.source or "") if p)
                lines.append(EvidenceLine(item.id, item.at, label, item.text, priority))
            case ChatMessage():
                label = " ".join(p for p in ("chat", item.author or "") if p)
                lines.append(EvidenceLine(item.id, item.at, label, item.text, 4))
    return lines


def truncate(text: str, max_tokens: int, count: TokenCount) -> tuple[str, bool]:
    """`text` cut at a word boundary to at most `max_tokens` (marker included)."""
    if count(text) <= max_tokens:
        return text, False
    words = text.split(" ")
    marker = " … [cut]"
    low, high = 0, len(words)
    while low < high:  # the longest prefix that fits with the marker
        middle = (low + high + 1) // 2
        if count(" ".join(words[:middle]) + marker) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return " ".join(words[:low]) + marker, True


def render(line: EvidenceLine) -> str:
    """`[id] 14:05:12Z kind: text` — one line, inner line breaks folded."""
    text = " ".join(line.text.split())
    return f"[{line.id}] {line.at.astimezone(UTC):%Y-%m-%d %H:%M:%SZ} {line.kind}: {text}"


def assemble_evidence(
    incident: Incident, budget: int, count: TokenCount, max_line_tokens: int = 160
) -> AssembledEvidence:
    """The evidence block for `incident` within `budget` tokens (see the module docstring).

    Lines go in strictly by priority: once one does not fit, nothing less telling goes in
    ahead of it. The closing marker names at most `MARKER_RUNS` stretches of left-out lines,
    so it stays small however long the incident; the least telling lines make room for it."""
    lines = evidence_lines(incident)
    chosen: dict[str, tuple[str, bool]] = {}
    used = 0
    for line in sorted(lines, key=lambda e: (e.priority, e.at, e.id)):
        rendered, cut = truncate(render(line), max_line_tokens, count)
        used += count(rendered) + 1  # the line break
        if used > budget:
            break
        chosen[line.id] = (rendered, cut)
    text = _block(lines, chosen)
    while chosen and count(text) > budget:  # room for the marker: drop the least telling
        chosen.popitem()
        text = _block(lines, chosen)
    return AssembledEvidence(
        text=text,
        tokens=count(text),
        included=tuple(line.id for line in lines if line.id in chosen),
        truncated=tuple(i for i, (_, cut) in chosen.items() if cut),
        omitted=tuple(line.id for line in lines if line.id not in chosen),
    )


def _block(lines: Sequence[EvidenceLine], chosen: dict[str, tuple[str, bool]]) -> str:
    """The `chosen` lines in time order (the order of `lines`), then a marker for the rest."""
    parts = [chosen[line.id][0] for line in lines if line.id in chosen]
    if len(chosen) < len(lines):
        parts.append(_omitted_marker(lines, chosen.keys()))
    return "\n".join(parts)


def _omitted_marker(lines: Sequence[EvidenceLine], shown: Collection[str]) -> str:
    """`[… N more evidence items left out for space: l1 to l40, l42, …, and M more]`: the
    stretches of consecutive lines (in time order) not `shown`, the first `MARKER_RUNS` named."""
    runs: list[list[str]] = []
    previous_shown = True
    for line in lines:
        if line.id in shown:
            previous_shown = True
            continue
        if previous_shown:
            runs.append([])
        runs[-1].append(line.id)
        previous_shown = False
    named = [run[0] if len(run) == 1 else f"{run[0]} to {run[-1]}" for run in runs[:MARKER_RUNS]]
    unnamed = sum(len(run) for run in runs[MARKER_RUNS:])
    tail = f", and {unnamed} more" if unnamed else ""
    total = sum(len(run) for run in runs)
    return f"[… {total} more evidence items left out for space: {', '.join(named)}{tail}]"


def postmortem_digest(pm: Postmortem, budget: int, count: TokenCount) -> str:
    """A past postmortem cut to what helps a new analysis: title, trigger, root causes,
    contributing factors and action items (open ones marked), within `budget` tokens."""
    parts = [f"{pm.id}: {pm.title}"]
    if pm.trigger:
        parts.append(f"Trigger: {pm.trigger}")
    parts.extend(f"Root cause: {cause}" for cause in pm.root_causes)
    parts.extend(f"Factor ({f.category.value}): {f.text}" for f in pm.contributing_factors)
    parts.extend(
        f"Action ({item.kind.value}, {item.status.value}): {item.text}" for item in pm.action_items
    )
    if len(parts) == 1:
        parts.append(f"Summary: {pm.summary}")
    text, _ = truncate("\n".join(parts), budget, count)
    return text
