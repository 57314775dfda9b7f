"""A draft analysis as Markdown, for a reviewer to read in a terminal or paste into a doc.

Every suggestion shows its id, confidence, basis, origin and cited evidence, with any
blameless-language flags under it. Everything from the incident or the model is untrusted: it is
folded onto one line, stripped of bidi and control characters, HTML-escaped and has its Markdown
link syntax backslash-escaped, so it reads as text, never as a link, an image or markup. Headings
follow `rca.formats.markdown`; the output depends only on the draft and the incident.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from rca.domain import (
    ActionItem,
    CausalNode,
    ContributingFactor,
    Draft,
    DraftUsage,
    FactorCategory,
    FollowUp,
    Incident,
    LessonContent,
    NodeKind,
    PostmortemTimelineEntry,
    Priority,
    Suggestion,
    SuggestionSection,
)
from rca.formats.markdown_syntax import LESSON_HEADINGS, SECTION_ORDER

_TITLES = dict(SECTION_ORDER)
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile(r"\s*[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+\s*")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # incl. ESC: no terminal escapes
_MARKUP = re.compile(r"([\\`*\[\]()])")
_KIND_RANK = {kind: rank for rank, kind in enumerate(NodeKind)}  # root_cause ... impact
_PRIORITY_RANK = {priority: rank for rank, priority in enumerate(Priority)}


def inline(value: str) -> str:
    """Untrusted text as inert one-line Markdown: bidi and control characters removed, line
    breaks folded into spaces, `&`, `<` and `>` as HTML entities, and backslash, backtick,
    asterisk, brackets and parentheses escaped with a backslash (no link, image or code span)."""
    plain = _BREAKS.sub(" ", _BIDI.sub("", value)).replace("\t", " ")
    plain = _CONTROL.sub("", plain).strip()
    html = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKUP.sub(r"\\\1", html)


def _cell(value: str) -> str:
    return inline(value).replace("|", "\\|")


def _ids(ids: list[str]) -> str:
    return ", ".join(inline(i) for i in ids)


def _moment(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(delta: timedelta) -> str:
    """A duration as `45 s`, `7 min` or `1 h 6 min`."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _label(value: str) -> str:
    return value.replace("_", " ")


def _meta(s: Suggestion) -> str:
    cited = _ids(s.evidence_ids) or "no evidence"
    return f"**{inline(s.id)}** ({s.confidence:.0%}, {s.basis.value}, {s.origin.value}) [{cited}]"


def _details(s: Suggestion, prefix: str = "  - ") -> list[str]:
    lines = [f"{prefix}why: {inline(s.rationale)}"] if s.rationale and s.rationale.strip() else []
    lines.extend(
        f"{prefix}⚠ '{inline(f.phrase)}': {inline(f.reason)} — consider: {inline(f.suggestion)}"
        for f in s.flags
    )
    return lines


def _item(s: Suggestion, body: str, *continuation: str) -> list[str]:
    return [f"- {_meta(s)} — {body}", *(f"  {line}" for line in continuation), *_details(s)]


def _text_of(s: Suggestion) -> str:
    return s.content if isinstance(s.content, str) else s.content.text


def _plain(items: list[Suggestion]) -> list[str]:
    return [line for s in items for line in _item(s, inline(_text_of(s)))]


def chain_order(nodes: list[CausalNode]) -> list[int]:
    """Positions of `nodes` in topological order: among nodes whose causes are listed, the
    earliest kind (root cause ... impact) first, then the given order; nodes on a cycle last."""
    positions: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        positions.setdefault(node.id, []).append(index)
    targets = [[j for t in node.leads_to for j in positions.get(t, [])] for node in nodes]
    indegree = [0] * len(nodes)
    for outgoing in targets:
        for j in outgoing:
            indegree[j] += 1
    ready = [(_KIND_RANK[n.kind], i) for i, n in enumerate(nodes) if indegree[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        _, index = heapq.heappop(ready)
        order.append(index)
        for j in targets[index]:
            indegree[j] -= 1
            if indegree[j] == 0:
                heapq.heappush(ready, (_KIND_RANK[nodes[j].kind], j))
    placed = set(order)
    return order + [i for i in range(len(nodes)) if i not in placed]


def _chain(items: list[Suggestion]) -> list[str]:
    pairs = [(s, s.content) for s in items if isinstance(s.content, CausalNode)]
    known = {node.id for _, node in pairs}
    lines: list[str] = []
    for index in chain_order([node for _, node in pairs]):
        s, node = pairs[index]
        body = f"**{inline(node.id)}** {_label(node.kind.value)}: {inline(node.text)}"
        targets = [inline(t) + ("" if t in known else " (not in the chain)") for t in node.leads_to]
        lines += _item(s, body, *([f"→ leads to: {', '.join(targets)}"] if targets else []))
    return lines


def _factors(items: list[Suggestion]) -> list[str]:
    lines: list[str] = []
    for category in FactorCategory:
        group = [
            s
            for s in items
            if isinstance(s.content, ContributingFactor) and s.content.category is category
        ]
        if group:
            lines += [*([""] if lines else []), f"### {category.value.capitalize()}", ""]
            lines += _plain(group)
    return lines


def _timeline(items: list[Suggestion]) -> list[str]:
    entries = [
        (s.content.at, i, s)
        for i, s in enumerate(items)
        if isinstance(s.content, PostmortemTimelineEntry)
    ]
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return [
        line for at, _, s in entries for line in _item(s, f"{_moment(at)} {inline(_text_of(s))}")
    ]


def _actions(items: list[Suggestion]) -> list[str]:
    rows = [(s, s.content) for s in items if isinstance(s.content, ActionItem)]
    rows.sort(key=lambda row: _PRIORITY_RANK[row[1].priority])  # stable: drafted order kept
    lines = ["| Priority | Kind | Action | Owner | Suggestion |", "|---|---|---|---|---|"]
    for s, action in rows:
        cells = [action.priority.value, action.kind.value, _cell(action.text)]
        cells += [_cell(action.owner) if action.owner else "—", _meta(s)]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [line for s, _ in rows for line in _details(s, f"- **{inline(s.id)}** ")]
    return lines + (["", *notes] if notes else [])


def _lessons(items: list[Suggestion]) -> list[str]:
    lines: list[str] = []
    for key, heading in LESSON_HEADINGS:
        group = [
            s for s in items if isinstance(s.content, LessonContent) and s.content.heading == key
        ]
        if group:
            lines += [*([""] if lines else []), f"### {heading}", ""]
            lines += _plain(group)
    return lines


def _follow_up(f: FollowUp) -> str:
    action = f.action
    related = _ids(f.related_suggestion_ids) or "—"
    return (
        f"- **{inline(f.postmortem_id)}** {inline(f.postmortem_title)} — {inline(action.text)} "
        f"({action.kind.value}, {action.priority.value}) · owner: "
        f"{inline(action.owner) if action.owner else 'unassigned'} · status: "
        f"{_label(action.status.value)} · relates to: {related} · similarity {f.similarity:.2f}"
    )


def _usage(usage: DraftUsage) -> list[str]:
    lines: list[str] = []
    if usage.calls:
        failed = [c for c in usage.calls if not c.ok]
        lines += [
            f"- Model calls: {len(usage.calls)} ({len(failed)} failed)",
            *(
                f"  - failed: {inline(c.section)} on {inline(c.model)}: {inline(c.error or '?')}"
                for c in failed
            ),
            f"- Tokens: {usage.prompt_tokens:,} prompt · {usage.completion_tokens:,} completion",
            f"- Cost: {usage.cost_usd:.4f} USD",
        ]
    if usage.stages_s:
        stages = " · ".join(f"{inline(k)} {v:.2f} s" for k, v in usage.stages_s.items())
        lines.append(f"- Stages: {stages} (total {usage.latency_s:.2f} s)")
    return lines


def _header(draft: Draft, incident: Incident) -> list[str]:
    services = ", ".join(inline(s) for s in incident.services) or "none listed"
    lines = [
        f"# Draft analysis: {inline(incident.title)}",
        "",
        f"- Incident: {inline(incident.id)} · {incident.severity.value} · services: {services}",
        f"- Draft: {inline(draft.id)} · created {_moment(draft.created_at)} · "
        f"model {inline(draft.model)} · prompt {inline(draft.prompt_version)}",
    ]
    times = [
        f"time to {name} {duration(delta)}"
        for name, delta in (
            ("detect", incident.time_to_detect),
            ("mitigate", incident.time_to_mitigate),
            ("resolve", incident.time_to_resolve),
        )
        if delta is not None
    ]
    if times:
        joined = " · ".join(times)
        lines.append(f"- {joined[:1].upper()}{joined[1:]}")
    return lines


def _note_lines(draft: Draft) -> list[str]:
    lines: list[str] = []
    for note in draft.notes:
        where = f" ({_label(note.section.value)})" if note.section else ""
        cited = f" [{_ids(note.evidence_ids)}]" if note.evidence_ids else ""
        lines.append(f"- **{_label(note.kind.value)}**{where}: {inline(note.message)}{cited}")
    return lines


_SECTIONS: tuple[tuple[SuggestionSection, str, Callable[[list[Suggestion]], list[str]]], ...] = (
    (SuggestionSection.SUMMARY, "summary", _plain),
    (SuggestionSection.IMPACT, "impact", _plain),
    (SuggestionSection.TRIGGER, "trigger", _plain),
    (SuggestionSection.ROOT_CAUSE, "root_causes", _plain),
    (SuggestionSection.CAUSAL_NODE, "causal_chain", _chain),
    (SuggestionSection.CONTRIBUTING_FACTOR, "contributing_factors", _factors),
    (SuggestionSection.TIMELINE, "timeline", _timeline),
    (SuggestionSection.DETECTION, "detection", _plain),
    (SuggestionSection.RESOLUTION, "resolution", _plain),
    (SuggestionSection.ACTION_ITEM, "action_items", _actions),
    (SuggestionSection.LESSON, "lessons", _lessons),
)
"""The drafted sections in reading order: their suggestion section, title key, renderer."""


def render_draft(draft: Draft, incident: Incident) -> str:
    """The draft as Markdown: metadata, notes, one section per part of the postmortem, follow-ups
    from similar incidents, usage. Sections without content are left out."""
    blocks = ["\n".join(_header(draft, incident))]
    by_section: dict[SuggestionSection, list[Suggestion]] = {}
    for s in draft.suggestions:
        by_section.setdefault(s.section, []).append(s)

    def section(title: str, lines: list[str]) -> None:
        if lines:
            blocks.append(f"## {title}\n\n" + "\n".join(lines))

    if draft.degraded:
        blocks.append(
            "> **⚠ Degraded draft.** Part of the drafting failed or ran without a component "
            "(see the notes), so this draft is less complete than usual."
        )
    section("Notes", _note_lines(draft))
    for kind, name, render in _SECTIONS:
        items = by_section.get(kind)
        section(_TITLES[name], render(items) if items else [])
    section("Open Follow-ups from Similar Incidents", [_follow_up(f) for f in draft.follow_ups])
    section("Similar Past Incidents", [f"- {inline(i)}" for i in draft.similar_postmortem_ids])
    section("Usage", _usage(draft.usage))
    return "\n\n".join(blocks) + "\n"
