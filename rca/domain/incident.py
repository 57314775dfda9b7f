"""An incident and its evidence: alerts, timeline events, log lines and chat messages.

Incident follows the interchange format exactly (unknown keys are an error, naive timestamps
are refused); evidence ids are assigned where the input leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Self

from pydantic import (
    Field,
    model_validator,
)

from rca.domain.values import (
    Frozen,
    Identifier,
    Line,
    Name,
    RequiredText,
    Severity,
    Text,
    TimelineKind,
    Timestamp,
    new_id,
    no_duplicates,
)

# ---------------------------------------------------------------------------------------------
# Incident and its evidence


class Alert(Frozen):
    """An alert that fired during the incident."""

    id: Identifier
    """Evidence id, unique inside the incident; drafts cite it."""
    at: Timestamp
    """When the alert fired."""
    source: Name | None = None
    """The system that raised it (prometheus, datadog, ...)."""
    name: Name | None = None
    """The alert rule's name."""
    labels: dict[str, str] = Field(default_factory=dict)
    """The alert's labels."""
    text: RequiredText
    """The alert's message."""


class TimelineEvent(Frozen):
    """An event on the incident timeline: a deploy, a config change, an action taken."""

    id: Identifier
    """Evidence id, unique inside the incident."""
    at: Timestamp
    """When it happened."""
    kind: TimelineKind
    """What kind of event this is."""
    actor: Name | None = None
    """Who or what did it (a person's handle, a bot, a system)."""
    text: RequiredText
    """What happened."""


class LogLine(Frozen):
    """A log excerpt."""

    id: Identifier
    """Evidence id, unique inside the incident."""
    at: Timestamp
    """When it was logged."""
    source: Name | None = None
    """The service or host that logged it."""
    text: RequiredText
    """The log text; may span several lines (a stack trace)."""


class ChatMessage(Frozen):
    """A message from the incident channel."""

    id: Identifier
    """Evidence id, unique inside the incident."""
    at: Timestamp
    """When it was posted."""
    author: Name | None = None
    """Who posted it."""
    text: RequiredText
    """The message."""


EvidenceItem = Alert | TimelineEvent | LogLine | ChatMessage

_EVIDENCE_GROUPS: dict[str, str] = {
    "alerts": "alert",
    "timeline": "event",
    "logs": "log",
    "chat": "chat",
}


def _assign_evidence_ids(data: dict[str, Any]) -> dict[str, Any]:
    """Give every evidence item without an id one of the form `alert-1`, `event-2`, `log-3`."""
    taken: set[str] = set()
    for group in _EVIDENCE_GROUPS:
        items = data.get(group)
        if isinstance(items, list):
            # Only well-formed ids count; anything else fails validation on the field later.
            taken.update(
                item["id"]
                for item in items
                if isinstance(item, dict) and isinstance(item.get("id"), str)
            )
    result = dict(data)
    for group, prefix in _EVIDENCE_GROUPS.items():
        items = data.get(group)
        if not isinstance(items, list):
            continue
        filled: list[Any] = []
        for position, item in enumerate(items, start=1):
            if isinstance(item, dict) and item.get("id") in (None, ""):
                number = position
                while f"{prefix}-{number}" in taken:
                    number += 1
                new_id = f"{prefix}-{number}"
                taken.add(new_id)
                item = {**item, "id": new_id}
            filled.append(item)
        result[group] = filled
    return result


class Incident(Frozen):
    """What an engineer submits for a draft analysis. Everything in it is untrusted text."""

    id: Identifier
    """Incident id; assigned by the service when the submitter leaves it out."""
    title: Line
    """A one-line title."""
    severity: Severity
    """How bad it is."""
    services: list[Name] = Field(default_factory=list)
    """Services involved."""
    started_at: Timestamp
    """When the impact started."""
    detected_at: Timestamp | None = None
    """When it was noticed (alert fired, report received)."""
    mitigated_at: Timestamp | None = None
    """When the impact stopped."""
    resolved_at: Timestamp | None = None
    """When the incident was closed."""
    summary: Text = ""
    """The reporter's free text; may be empty."""
    alerts: list[Alert] = Field(default_factory=list)
    """Alerts that fired."""
    timeline: list[TimelineEvent] = Field(default_factory=list)
    """Deploys, config changes, actions, comms, observations."""
    logs: list[LogLine] = Field(default_factory=list)
    """Log excerpts."""
    chat: list[ChatMessage] = Field(default_factory=list)
    """Messages from the incident channel."""
    tags: list[Name] = Field(default_factory=list)
    """Free-form labels."""

    @model_validator(mode="before")
    @classmethod
    def _fill_ids(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = _assign_evidence_ids(data)
            if not data.get("id"):
                data = {**data, "id": new_id("inc")}
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        no_duplicates([item.id for item in self.evidence()], "evidence id")
        for name in ("detected_at", "mitigated_at", "resolved_at"):
            moment: datetime | None = getattr(self, name)
            if moment is not None and moment < self.started_at:
                raise ValueError(f"{name} is before started_at")
        if self.resolved_at and self.mitigated_at and self.resolved_at < self.mitigated_at:
            raise ValueError("resolved_at is before mitigated_at")
        return self

    def evidence(self) -> Iterator[EvidenceItem]:
        """Every evidence item, alerts first, then timeline, logs and chat."""
        yield from self.alerts
        yield from self.timeline
        yield from self.logs
        yield from self.chat

    def evidence_ids(self) -> set[str]:
        """The ids a draft may cite."""
        return {item.id for item in self.evidence()}

    @property
    def time_to_detect(self) -> timedelta | None:
        """From start of impact to detection."""
        return self.detected_at - self.started_at if self.detected_at else None

    @property
    def time_to_mitigate(self) -> timedelta | None:
        """From start of impact to the end of impact."""
        return self.mitigated_at - self.started_at if self.mitigated_at else None

    @property
    def time_to_resolve(self) -> timedelta | None:
        """From start of impact to resolution."""
        return self.resolved_at - self.started_at if self.resolved_at else None


# ---------------------------------------------------------------------------------------------
