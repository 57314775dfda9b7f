"""What the pages show, computed from the domain objects: evidence rows, the merged timeline,
suggestions grouped by section with their cited evidence, the pictures, edits read from forms.
No HTML here except the SVG pictures, which `api.web.diagrams` builds with everything escaped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from markupsafe import Markup

from api.schemas import decode_time_cursor, encode_cursor
from api.services import Services
from api.web.diagrams import causal_chain_svg, fishbone_svg, format_duration, timeline_svg
from api.web.diagrams import durations as moment_durations
from rca.config import Settings
from rca.domain import (
    CausalNode,
    Draft,
    Incident,
    Postmortem,
    PostmortemTimelineEntry,
    Suggestion,
    SuggestionSection,
)
from rca.domain.similar import SimilarHit
from rca.domain.values import as_utc
from rca.drafting.findings import find
from rca.errors import RcaError
from rca.redaction import Redactor, redact_incident
from rca.store import ActionItemRow, IncidentSummary, PostmortemSummary

SECTION_TITLES: dict[SuggestionSection, str] = {
    SuggestionSection.SUMMARY: "Executive summary",
    SuggestionSection.IMPACT: "Impact",
    SuggestionSection.TRIGGER: "Trigger",
    SuggestionSection.ROOT_CAUSE: "Root causes",
    SuggestionSection.CONTRIBUTING_FACTOR: "Contributing factors",
    SuggestionSection.CAUSAL_NODE: "Causal chain",
    SuggestionSection.TIMELINE: "Timeline",
    SuggestionSection.DETECTION: "Detection",
    SuggestionSection.RESOLUTION: "Resolution",
    SuggestionSection.ACTION_ITEM: "Action items",
    SuggestionSection.LESSON: "Lessons",
}


_UNSEEN: dict[int, str | None] = {
    # Bidi controls go: they could make untrusted text read differently than it is.
    **dict.fromkeys(
        map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    ),
    # Control characters (NUL, escape, ...) show as their Control Pictures symbol (␀, ␛, ...).
    **{c: chr(0x2400 + c) for c in range(0x20) if chr(c) not in "\t\n\r"},
    0x7F: "\u2421",
    **dict.fromkeys(range(0x80, 0xA0), "\ufffd"),
    # Invisible characters that could hide inside a word show as their code point.
    **{c: f"[U+{c:04X}]" for c in (0x180E, 0x200B, 0x200C, 0x200D, 0x2060, 0x2061, 0x2062)},
    **{c: f"[U+{c:04X}]" for c in (0x2063, 0x2064, 0xFEFF)},
}


def shown(value: Any) -> Any:
    """Every `{{ value }}` of a page passes here (the templates' finalize): text loses bidi
    controls, and control and zero-width characters become visible, so untrusted text reads
    as what it is."""
    if isinstance(value, Markup):  # our own SVG pictures, already cleaned by api.web.diagrams
        return value
    return value.translate(_UNSEEN) if isinstance(value, str) else value


def when(value: datetime | None) -> str:
    """A moment as the pages show it (UTC, minutes); as written if it has no UTC form."""
    if value is None:
        return "—"
    try:
        return as_utc(value).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value.isoformat()


def pct(value: float) -> str:
    return f"{round(value * 100)} %"


def incident_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The incident list's position from a cursor (the API's format)."""
    return decode_time_cursor(cursor) if cursor else None


def cursor_after(row: IncidentSummary) -> str:
    return encode_cursor(row.started_at.isoformat(), row.id)


def redactor_of(services: Services) -> Redactor:
    """The redactor configured as the drafts' one."""
    return Redactor(ip_addresses=services.settings.redaction.ip_addresses)


def for_display(services: Services, incident: Incident) -> Incident:
    """The incident as pages show it: secrets and personal data replaced by the same
    placeholders the drafts use (the pages are read by more people than wrote the incident)."""
    return redact_incident(incident, redactor_of(services))[0]


Listed = TypeVar("Listed", IncidentSummary, PostmortemSummary)


def titled(services: Services, rows: Sequence[Listed]) -> list[Listed]:
    """List rows as the list pages show them: their titles redacted."""
    redactor = redactor_of(services)
    return [replace(row, title=redactor.redact(row.title)) for row in rows]


def shown_actions(services: Services, rows: Sequence[ActionItemRow]) -> list[ActionItemRow]:
    """Action items as the board and the incident page list them: their text, owner and
    postmortem title redacted (postmortems imported as written may hold secrets)."""
    redactor = redactor_of(services)

    def shown(row: ActionItemRow) -> ActionItemRow:
        action = row.action
        owner = redactor.redact(action.owner) if action.owner else action.owner
        update = {"text": redactor.redact(action.text), "owner": owner}
        return replace(
            row,
            postmortem_title=redactor.redact(row.postmortem_title),
            action=action.model_copy(update=update),
        )

    return [shown(row) for row in rows]


@dataclass(frozen=True)
class EvidenceRow:
    """One alert, timeline event, log line or chat message, as the evidence panel lists it."""

    id: str
    kind: str
    at: datetime
    who: str
    text: str


def evidence_rows(incident: Incident) -> list[EvidenceRow]:
    rows = [
        EvidenceRow(a.id, "alert", a.at, a.name or a.source or "", a.text) for a in incident.alerts
    ]
    rows += [
        EvidenceRow(e.id, e.kind.value, e.at, e.actor or "", e.text) for e in incident.timeline
    ]
    rows += [EvidenceRow(x.id, "log", x.at, x.source or "", x.text) for x in incident.logs]
    rows += [EvidenceRow(c.id, "chat", c.at, c.author or "", c.text) for c in incident.chat]
    return sorted(rows, key=lambda r: r.at)


def moments(incident: Incident) -> list[Any]:
    return find(incident).timeline


def durations(incident: Incident) -> list[tuple[str, str]]:
    found = moment_durations(
        incident.started_at, incident.detected_at, incident.mitigated_at, incident.resolved_at
    )
    return [(label, format_duration(delta)) for label, delta in found]


def incident_timeline_svg(incident: Incident) -> str:
    entries = [
        PostmortemTimelineEntry(at=m.at, text=(m.key + ": " if m.key else "") + m.text[:200])
        for m in find(incident).timeline
        if m.key
    ]
    return timeline_svg(
        entries,
        started_at=incident.started_at,
        detected_at=incident.detected_at,
        mitigated_at=incident.mitigated_at,
        resolved_at=incident.resolved_at,
    )


def similar_for(services: Services, incident: Incident) -> tuple[list[SimilarHit], str | None]:
    try:
        found = services.retrieval.search.search(incident, k=5)
    except RcaError as err:
        return [], f"similar incidents are unavailable: {err}"
    note = "; ".join(found.notes) if found.notes else None
    return found.hits, note


def open_actions_of(services: Services, postmortem_ids: list[str]) -> list[ActionItemRow]:
    rows: list[ActionItemRow] = []
    for ident in postmortem_ids:
        rows += [
            r
            for r in services.store.action_item_page(50, postmortem_id=ident)
            if r.action.status.value in ("open", "in_progress")
        ]
    return shown_actions(services, rows)


def text_of(s: Suggestion) -> str:
    content = s.content
    if isinstance(content, str):
        return content
    return str(getattr(content, "text", ""))


def draft_context(draft: Draft, incident: Incident) -> dict[str, Any]:
    sections = [
        (section, SECTION_TITLES[section], [s for s in draft.suggestions if s.section is section])
        for section in SuggestionSection
    ]
    nodes = [s.content for s in draft.suggestions if isinstance(s.content, CausalNode)]
    factors = [
        s.content
        for s in draft.suggestions
        if s.section is SuggestionSection.CONTRIBUTING_FACTOR and s.status.value != "rejected"
    ]
    effect = next(
        (text_of(s) for s in draft.suggestions if s.section is SuggestionSection.IMPACT), ""
    )
    pending = sum(1 for s in draft.suggestions if s.status.value == "pending")
    return {
        "draft": draft,
        "sections": [(sec, title, items) for sec, title, items in sections if items],
        "chain_svg": causal_chain_svg(nodes) if nodes else None,
        "fishbone_svg": fishbone_svg(factors, effect=effect or incident.title),  # type: ignore[arg-type]
        "pending": pending,
        "text_of": text_of,
    }


EDITABLE = frozenset({"text", "category", "kind", "priority", "owner", "heading"})
"""Fields of structured suggestions the edit form changes; the rest (ids, links, times) stay."""


def edited_content(draft: Draft, suggestion_id: str, fields: dict[str, str]) -> Any:
    """The edited content from an edit form: the suggestion's own content with the fields the
    form may change replaced (a string for text sections)."""
    found = next((s for s in draft.suggestions if s.id == suggestion_id), None)
    if found is None:
        return fields.get("text", "")
    if isinstance(found.content, str):
        return fields.get("text", "")
    content: dict[str, Any] = found.content.model_dump(mode="json")
    for name in EDITABLE.intersection(content).intersection(fields):
        content[name] = fields[name]
    if content.get("owner") == "":
        content["owner"] = None  # an emptied owner field: unassigned
    return content


def chain_svg(nodes: list[CausalNode]) -> str | None:
    return causal_chain_svg(nodes) if nodes else None


def fishbone(pm: Postmortem) -> str:
    effect = pm.impact or pm.title
    return fishbone_svg(pm.contributing_factors, effect=effect)


def reports_dir(settings: Settings) -> Path:
    return settings.data_dir / "eval-reports"


def latest_report(settings: Settings) -> Path | None:
    """The newest `report.html` under the data directory's eval-reports/ (where
    `rca eval report --out` may write, or copy one)."""
    root = reports_dir(settings)
    found = (
        sorted(root.glob("**/report.html"), key=lambda p: p.stat().st_mtime)
        if root.exists()
        else []
    )
    return found[-1] if found else None
