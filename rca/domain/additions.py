"""Evidence added to an incident after it was created, and the fields a tool may set on it.

`EvidenceAdditions` is what a client appends (ids optional: new ones are assigned);
`IncidentChange` adds what an integration knows besides (times, services, severity). `apply`
returns the incident with them, which ids were added and which were already there. An item
whose id is already taken with the same content is a repeat (a redelivered webhook) and is
skipped; with other content it is an error, since evidence once cited never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from pydantic import Field, model_validator

from rca.domain.incident import Alert, ChatMessage, EvidenceItem, Incident, LogLine, TimelineEvent
from rca.domain.values import Frozen, Identifier, Name, Severity, Timestamp, no_duplicates

MAX_EVIDENCE = 10_000
"""The most evidence items one incident may hold (all groups together)."""
MAX_ADDED = 1_000
"""The most evidence items one addition may carry."""


class EvidenceTaken(ValueError):
    """An added item's id is already taken by other content."""


class NewAlert(Alert):
    """An alert to add; its id is assigned when left out."""

    id: Identifier | None = None  # type: ignore[assignment]
    """Evidence id; a new one (`alert-N`) when left out."""


class NewTimelineEvent(TimelineEvent):
    """A timeline event to add; its id is assigned when left out."""

    id: Identifier | None = None  # type: ignore[assignment]
    """Evidence id; a new one (`event-N`) when left out."""


class NewLogLine(LogLine):
    """A log line to add; its id is assigned when left out."""

    id: Identifier | None = None  # type: ignore[assignment]
    """Evidence id; a new one (`log-N`) when left out."""


class NewChatMessage(ChatMessage):
    """A chat message to add; its id is assigned when left out."""

    id: Identifier | None = None  # type: ignore[assignment]
    """Evidence id; a new one (`chat-N`) when left out."""


class EvidenceAdditions(Frozen):
    """Evidence to append to a stored incident."""

    alerts: list[NewAlert] = Field(default_factory=list)
    """Alerts to add."""
    timeline: list[NewTimelineEvent] = Field(default_factory=list)
    """Timeline events to add."""
    logs: list[NewLogLine] = Field(default_factory=list)
    """Log lines to add."""
    chat: list[NewChatMessage] = Field(default_factory=list)
    """Chat messages to add."""

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        if isinstance(data, dict):
            count = sum(
                len(v) for k, v in data.items() if k in _GROUPS and isinstance(v, list | tuple)
            )
            if count > MAX_ADDED:
                raise ValueError(f"at most {MAX_ADDED} evidence items at once, got {count}")
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.count():
            raise ValueError("add at least one alert, timeline event, log line or chat message")
        no_duplicates([i.id for i in self.items() if i.id is not None], "evidence id")
        return self

    def items(self) -> list[NewAlert | NewTimelineEvent | NewLogLine | NewChatMessage]:
        """Every item, in group order."""
        return [*self.alerts, *self.timeline, *self.logs, *self.chat]

    def count(self) -> int:
        """How many items there are."""
        return len(self.items())


class IncidentChange(Frozen):
    """Everything a change to a stored incident may carry: evidence, and what a tool knows."""

    evidence: EvidenceAdditions | None = None
    """Evidence to append."""
    detected_at: Timestamp | None = None
    """Set when the incident has no detection time yet."""
    mitigated_at: Timestamp | None = None
    """Set when the incident has no mitigation time yet."""
    resolved_at: Timestamp | None = None
    """Set when the incident has no resolution time yet."""
    services: list[Name] = Field(default_factory=list)
    """Services to add (those already listed are kept once)."""
    severity_at_least: Severity | None = None
    """Raise the severity to this one when it is worse than the stored one."""
    tags: list[Name] = Field(default_factory=list)
    """Tags to add."""
    keep_first: bool = False
    """An item whose id is taken counts as a repeat even when its content differs (a tool that
    re-sends an alert with fresh annotation values): the first version stays."""


@dataclass(frozen=True)
class Applied:
    """An incident after a change: what was added, what was a repeat, which fields were set."""

    incident: Incident
    added: list[str]
    repeated: list[str]
    fields: list[str]

    @property
    def changed(self) -> bool:
        """Whether anything is different from before."""
        return bool(self.added or self.fields)


_GROUPS: dict[str, str] = {"alerts": "alert", "timeline": "event", "logs": "log", "chat": "chat"}
_KINDS: dict[type[Any], tuple[str, type[EvidenceItem]]] = {
    NewAlert: ("alerts", Alert),
    NewTimelineEvent: ("timeline", TimelineEvent),
    NewLogLine: ("logs", LogLine),
    NewChatMessage: ("chat", ChatMessage),
}


def apply(incident: Incident, change: IncidentChange) -> Applied:
    """The incident with `change` applied. ValueError when an id is taken with other content,
    the incident would hold over `MAX_EVIDENCE` items, or a time contradicts the others."""
    existing = {item.id: item for item in incident.evidence()}
    data = incident.model_dump()
    added: list[str] = []
    repeated: list[str] = []
    counters = {group: len(data[group]) for group in _GROUPS}
    for item in change.evidence.items() if change.evidence else []:
        group, final = _KINDS[type(item)]
        ident = item.id
        if ident is None:
            counters[group] += 1
            ident = f"{_GROUPS[group]}-{counters[group]}"
            while ident in existing:
                counters[group] += 1
                ident = f"{_GROUPS[group]}-{counters[group]}"
        made = final.model_validate({**item.model_dump(), "id": ident})
        if ident in existing:
            if existing[ident] != made and not change.keep_first:
                raise EvidenceTaken(f"evidence id {ident!r} is taken by other content")
            repeated.append(ident)
            continue
        existing[ident] = made
        data[group].append(made.model_dump())
        added.append(ident)
    if len(existing) > MAX_EVIDENCE:
        raise ValueError(
            f"an incident holds at most {MAX_EVIDENCE} evidence items; this change would make "
            f"{len(existing)}: open a new incident"
        )
    fields = _set_fields(incident, change, data)
    return Applied(Incident.model_validate(data), added, repeated, fields)


def _set_fields(incident: Incident, change: IncidentChange, data: dict[str, Any]) -> list[str]:
    fields: list[str] = []
    for name in ("detected_at", "mitigated_at", "resolved_at"):
        value: datetime | None = getattr(change, name)
        if value is not None and getattr(incident, name) is None:
            data[name] = value
            fields.append(name)
    services = list(dict.fromkeys([*incident.services, *change.services]))
    if services != list(incident.services):
        data["services"] = services
        fields.append("services")
    tags = list(dict.fromkeys([*incident.tags, *change.tags]))
    if tags != list(incident.tags):
        data["tags"] = tags
        fields.append("tags")
    wanted = change.severity_at_least
    if wanted is not None and _ORDER.index(wanted) < _ORDER.index(incident.severity):
        data["severity"] = wanted
        fields.append("severity")
    return fields


_ORDER = list(Severity)
