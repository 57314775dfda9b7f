"""PagerDuty v3 webhooks: the envelope PagerDuty sends, and what rca does with each event.

A delivery holds one event, `{"event": {"id", "event_type", "resource_type", "occurred_at",
"agent", "client", "data"}}`; `data` is the incident for incident events and an
`incident_note` (`incident` reference and `content`) for `incident.annotated`. `parse` checks
it: unknown keys are dropped, a missing or malformed required one is a pydantic
ValidationError naming it (e.g. `event.occurred_at`). `translate` says what to do:

| event type | action | timeline entry (kind: text) |
|---|---|---|
| incident.triggered | open | alert: PagerDuty incident #12 triggered: <title> |
| incident.acknowledged | timeline | action: Acknowledged by <agent> |
| incident.escalated | timeline | action: Escalated to level 2 of <policy>; now assigned to ... |
| incident.reassigned | timeline | action: Reassigned to <names> |
| incident.annotated | timeline | note: the note's content |
| incident.resolved | resolve | action: Resolved by <agent> |
| any other type, any other resource type | ignore | none; `reason` says why |

Timeline ids are `pd-<event id>` (hashed if not a valid id), so a redelivery is recognisable.
All of it is untrusted text: kept as data (links never followed), controls dropped, clipped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from rca.domain.incident import TimelineEvent
from rca.domain.values import ID_PATTERN, Frozen, Severity, TimelineKind, Timestamp
from rca.integrations.text import CONTROL, clip, http_url, line

TITLE_CHARS = 500
"""An incident title longer than this is clipped."""
NAME_CHARS = 100
"""A person, service or policy name longer than this is clipped."""
NOTE_CHARS = 10_000
"""A note longer than this is clipped."""
URL_CHARS = 2_000
"""A link longer than this is dropped (a clipped link would point somewhere else)."""
MAX_ASSIGNEES = 10
"""Assignees named in a timeline text; the rest are counted."""

Action = Literal["open", "timeline", "resolve", "ignore"]

# ---------------------------------------------------------------------------------------------
# The envelope, as PagerDuty sends it


class _Lenient(BaseModel):
    """What another tool sends: frozen once read, unknown keys dropped (tools add fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


_Key = Annotated[str, StringConstraints(min_length=1, max_length=200)]
_Word = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]


class PagerDutyReference(_Lenient):
    """A reference to another PagerDuty object: a user, service, escalation policy or team."""

    id: str | None = None
    """PagerDuty's id of the object."""
    summary: str | None = None
    """Its display name."""
    html_url: str | None = None
    """Where PagerDuty shows it."""


class PagerDutyIncidentReference(PagerDutyReference):
    """A reference to the incident an event is about (a note's incident)."""

    id: _Key
    """PagerDuty's id of the incident."""


class PagerDutyPriority(_Lenient):
    """An incident's priority, as configured in the PagerDuty account."""

    summary: str | None = None
    """Its display name, e.g. `P1`."""
    name: str | None = None
    """Its name, where sent (the REST API's priority object has one)."""


class PagerDutyIncident(_Lenient):
    """The `data` of an incident event: the incident as it is after the event."""

    id: _Key
    """PagerDuty's id of the incident."""
    number: Annotated[int, Field(ge=0, le=10**12)] | None = None
    """The incident's number in the account (the `#1234` people quote)."""
    title: str | None = None
    """The incident's title."""
    html_url: str | None = None
    """Where PagerDuty shows the incident."""
    urgency: str | None = None
    """high or low."""
    priority: PagerDutyPriority | None = None
    """The priority, when the account uses priorities and one is set."""
    service: PagerDutyReference | None = None
    """The service the incident belongs to."""
    assignees: list[PagerDutyReference] = Field(default_factory=list, max_length=1000)
    """Who it is assigned to now."""
    escalation_policy: PagerDutyReference | None = None
    """The escalation policy handling it."""
    escalation_level: Annotated[int, Field(ge=0, le=1000)] | None = None
    """The escalation level reached, where sent (not every payload has it)."""


class PagerDutyNote(_Lenient):
    """The `data` of `incident.annotated`: a note added to an incident."""

    id: str | None = None
    """PagerDuty's id of the note."""
    incident: PagerDutyIncidentReference
    """The incident the note was added to (its summary is the incident's title)."""
    content: str
    """What the note says."""
    trimmed: bool = False
    """True when PagerDuty shortened the content for the webhook."""


DataT = TypeVar("DataT")


class PagerDutyWebhookEvent(_Lenient, Generic[DataT]):
    """The one event a v3 delivery holds."""

    id: _Key
    """PagerDuty's id of the event; the same on every redelivery."""
    event_type: _Word
    """What happened, e.g. `incident.acknowledged`."""
    resource_type: _Word
    """What it happened to, e.g. `incident`, `service`."""
    occurred_at: Timestamp
    """When it happened."""
    agent: PagerDutyReference | None = None
    """Who or what did it (a user, or the service for an automatic trigger)."""
    client: dict[str, Any] | None = None
    """Where it was done from (`{"name": ...}`)."""
    data: DataT
    """The object the event is about; its shape depends on `event_type`."""


class PagerDutyWebhook(_Lenient, Generic[DataT]):
    """A v3 webhook delivery."""

    event: PagerDutyWebhookEvent[DataT]
    """The event delivered."""


AnyWebhook = (
    PagerDutyWebhook[PagerDutyIncident]
    | PagerDutyWebhook[PagerDutyNote]
    | PagerDutyWebhook[dict[str, Any]]
)

# event type → (action, timeline kind)
_INCIDENT_EVENTS: dict[str, tuple[Action, TimelineKind]] = {
    "incident.triggered": ("open", TimelineKind.ALERT),
    "incident.acknowledged": ("timeline", TimelineKind.ACTION),
    "incident.escalated": ("timeline", TimelineKind.ACTION),
    "incident.reassigned": ("timeline", TimelineKind.ACTION),
    "incident.resolved": ("resolve", TimelineKind.ACTION),
}
_NOTE_EVENT = "incident.annotated"
_JSON: TypeAdapter[Any] = TypeAdapter(Any)


def parse(payload: Mapping[str, Any] | str | bytes | PagerDutyWebhook[Any]) -> AnyWebhook:
    """The delivery read and checked: incident events get a `PagerDutyIncident`, notes a
    `PagerDutyNote`, other events their data as a plain object. ValidationError otherwise."""
    if isinstance(payload, PagerDutyWebhook):
        raw: Any = payload.model_dump(mode="json")
    elif isinstance(payload, str | bytes):
        raw = _JSON.validate_json(payload)
    else:
        raw = payload
    generic = PagerDutyWebhook[dict[str, Any]].model_validate(raw)
    event = generic.event
    if event.resource_type == "incident" and event.event_type in _INCIDENT_EVENTS:
        return PagerDutyWebhook[PagerDutyIncident].model_validate(raw)
    if event.resource_type == "incident" and event.event_type == _NOTE_EVENT:
        return PagerDutyWebhook[PagerDutyNote].model_validate(raw)
    return generic


# ---------------------------------------------------------------------------------------------
# What rca makes of it


class PagerDutyMapping(Frozen):
    """How PagerDuty's priorities and urgencies become rca severities."""

    priorities: dict[str, Severity] = Field(
        default_factory=lambda: {f"P{n}": Severity(f"SEV{n}") for n in range(1, 6)}
    )
    """Priority name (e.g. `P1`, compared ignoring case) → severity; checked first."""
    urgencies: dict[str, Severity] = Field(
        default_factory=lambda: {"high": Severity.SEV2, "low": Severity.SEV4}
    )
    """Urgency (`high`, `low`, compared ignoring case) → severity, when no priority maps."""
    default_severity: Severity = Severity.SEV3
    """The severity when neither the priority nor the urgency maps."""

    def severity(self, incident: PagerDutyIncident) -> Severity:
        """The severity of `incident`: by priority, else by urgency, else the default."""
        priority = incident.priority
        label = (priority.name or priority.summary) if priority else None
        return (
            _lookup(self.priorities, label)
            or _lookup(self.urgencies, incident.urgency)
            or self.default_severity
        )


def _lookup(table: Mapping[str, Severity], key: str | None) -> Severity | None:
    folded = {name.casefold(): value for name, value in table.items()}
    return folded.get(key.strip().casefold()) if key else None


@dataclass(frozen=True)
class PagerDutyEvent:
    """One PagerDuty event, translated: what to do with rca's incident and what to record."""

    event_id: str
    """PagerDuty's id of the event; the same on every redelivery."""
    event_type: str
    """PagerDuty's event type, e.g. `incident.acknowledged`."""
    occurred_at: datetime
    """When it happened (with its offset)."""
    action: Action
    """open an incident, add to its timeline, resolve it, or ignore the event."""
    reason: str | None = None
    """Why the event is ignored; None otherwise."""
    pd_incident_id: str | None = None
    """PagerDuty's id of the incident, when the event is about one."""
    number: int | None = None
    """The incident's number in the PagerDuty account."""
    url: str | None = None
    """Where PagerDuty shows the incident (an http(s) link, kept as data, never fetched)."""
    title: str | None = None
    """The incident's title, one line, clipped."""
    service: str | None = None
    """The PagerDuty service's name."""
    severity: Severity | None = None
    """The severity mapped from priority or urgency (incident events only)."""
    event: TimelineEvent | None = None
    """The entry for the incident's timeline; None when ignored."""


def translate(
    envelope: Mapping[str, Any] | str | bytes | PagerDutyWebhook[Any],
    mapping: PagerDutyMapping | None = None,
) -> PagerDutyEvent:
    """What to do with one delivery; ValidationError when it is not a v3 delivery."""
    event: PagerDutyWebhookEvent[Any] = parse(envelope).event
    base = PagerDutyEvent(event.id, event.event_type, event.occurred_at, action="ignore")
    if event.resource_type != "incident":
        return replace(base, reason=f"resource type {event.resource_type} is not used")
    if isinstance(event.data, PagerDutyIncident):
        return _from_incident(base, event, event.data, mapping or PagerDutyMapping())
    if isinstance(event.data, PagerDutyNote):
        return _from_note(base, event, event.data)
    reason = f"event type {event.event_type} is not used"
    return replace(base, reason=reason, pd_incident_id=_incident_id(event.data))


def timeline_id(event_id: str) -> str:
    """The timeline event id for a PagerDuty event: `pd-<event id>`, or `pd-<hash>` when the
    event id would not make a valid id."""
    candidate = f"pd-{event_id}"
    if re.fullmatch(ID_PATTERN, candidate):
        return candidate
    return "pd-" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()[:40]


def _from_incident(
    base: PagerDutyEvent,
    event: PagerDutyWebhookEvent[Any],
    incident: PagerDutyIncident,
    mapping: PagerDutyMapping,
) -> PagerDutyEvent:
    action, kind = _INCIDENT_EVENTS[event.event_type]
    actor = _agent(event)
    title = line(incident.title, TITLE_CHARS) or "Untitled PagerDuty incident"
    if event.event_type == "incident.triggered":
        number = f" #{incident.number}" if incident.number is not None else ""
        text = f"PagerDuty incident{number} triggered: {title}"
    elif event.event_type == "incident.acknowledged":
        text = "Acknowledged" + (f" by {actor}" if actor else "")
    elif event.event_type == "incident.escalated":
        text = _escalated(incident)
    elif event.event_type == "incident.reassigned":
        assignees = _names(incident.assignees)
        text = "Reassigned" + (f" to {assignees}" if assignees else "")
    else:
        text = "Resolved" + (f" by {actor}" if actor else "")
    return replace(
        base,
        action=action,
        pd_incident_id=incident.id,
        number=incident.number,
        url=_url(incident.html_url),
        title=title,
        service=line(incident.service.summary if incident.service else None, NAME_CHARS),
        severity=mapping.severity(incident),
        event=_timeline(event, kind, actor, text),
    )


def _from_note(
    base: PagerDutyEvent, event: PagerDutyWebhookEvent[Any], note: PagerDutyNote
) -> PagerDutyEvent:
    content = CONTROL.sub("", note.content.replace("\r\n", "\n").replace("\r", "\n")).strip()
    content = clip(content, NOTE_CHARS) or "(empty note)"
    if note.trimmed:
        content += "\n(PagerDuty sent this note shortened.)"
    return replace(
        base,
        action="timeline",
        pd_incident_id=note.incident.id,
        url=_url(note.incident.html_url),
        title=line(note.incident.summary, TITLE_CHARS),
        event=_timeline(event, TimelineKind.NOTE, _agent(event), content),
    )


def _timeline(
    event: PagerDutyWebhookEvent[Any], kind: TimelineKind, actor: str | None, text: str
) -> TimelineEvent:
    at, ident = event.occurred_at, timeline_id(event.id)
    return TimelineEvent(id=ident, at=at, kind=kind, actor=actor, text=text)


def _escalated(incident: PagerDutyIncident) -> str:
    policy = incident.escalation_policy
    policy_name = line(policy.summary, NAME_CHARS) if policy else None
    level = incident.escalation_level
    text = "Escalated" + (f" to level {level}" if level is not None else "")
    if policy_name:
        text += f" of {policy_name}" if level is not None else f" within {policy_name}"
    assignees = _names(incident.assignees)
    if assignees:
        text += f"; now assigned to {assignees}"
    return text


def _incident_id(data: dict[str, Any]) -> str | None:
    """The incident id in the data of an event rca does not use, where one is plain to see."""
    reference = data.get("incident")
    if isinstance(reference, dict):
        found = reference.get("id")
    else:
        found = data.get("id") if data.get("type") == "incident" else None
    return found if isinstance(found, str) and 0 < len(found) <= 200 else None


def _agent(event: PagerDutyWebhookEvent[Any]) -> str | None:
    return line(event.agent.summary, NAME_CHARS) if event.agent else None


def _names(references: Sequence[PagerDutyReference]) -> str:
    names = [name for ref in references if (name := line(ref.summary, NAME_CHARS))]
    shown = ", ".join(names[:MAX_ASSIGNEES])
    if len(names) > MAX_ASSIGNEES:
        shown += f" and {len(names) - MAX_ASSIGNEES} more"
    return shown


def _url(value: str | None) -> str | None:
    """An http(s) link as sent, or None (other schemes, spaces, or too long)."""
    return http_url(value, URL_CHARS)
