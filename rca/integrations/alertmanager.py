"""Alertmanager's webhook notification (payload version 4), read and turned into rca's alerts.

`Notification.model_validate_json(body)` (or `parse_notification`) reads a request body;
anything malformed raises pydantic's `ValidationError`, whose locations use the payload's own
field names (`alerts.3.startsAt`), and the API answers it with a 422. Keys this module does
not know are ignored, since Alertmanager adds fields over time; a `version` other than "4" is
refused. Sizes are bounded: at most 1000 alerts, maps of at most 100 entries, keys of at most
200 and values of at most 10,000 characters; a notification over a bound is refused whole
rather than cut, so that nothing is silently lost.

`translate(notification, mapping)` then says what the notification means for rca: the
alerts as evidence, the group's title, severity and services, when it started and, once every
alert is resolved, when it ended. Everything in a notification is untrusted text; it is kept as
given (secrets are redacted later, when a draft is made) and only shortened.

May import: `rca.domain`, `rca.errors`, pydantic and the standard library. No I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from rca.domain import Alert, Frozen, Severity
from rca.domain.values import Timestamp

MAX_ALERTS = 1000
"""Most alerts one notification may carry."""
MAX_ENTRIES = 100
"""Most entries a label or annotation map may have."""
MAX_KEY = 200
"""Longest label or annotation name, in characters."""
MAX_VALUE = 10_000
"""Longest label or annotation value (and other free strings), in characters."""
MAX_SERVICES = 20
"""Most services one group names."""
MAX_TITLE = 200
"""Longest group title, in characters."""
MAX_TEXT = 10_000
"""Longest alert text, in characters."""
MAX_NAME = 100
"""Longest alert or service name (the domain's `Name`), in characters."""
SOURCE = "alertmanager"
"""The `source` of every alert made here."""
ANNOTATION_PREFIX = "annotation:"
"""Annotations other than the text ones are kept among an alert's labels under this prefix."""
GENERATOR_URL_LABEL = "generator_url"
"""The label that keeps an alert's generator URL (a value only; it is never followed)."""

_HEX = re.compile(r"[0-9a-fA-F]{1,64}")
# Go's zero time, which Alertmanager sends as the end of an alert that has not ended.
_ZERO_TIME = "0001-01-01T00:00:00"


def _count_first(limit: int, what: str) -> BeforeValidator:
    """A before-validator refusing a list or map over `limit` before any item is read."""

    def check(value: Any) -> Any:
        if isinstance(value, list | dict) and len(value) > limit:
            raise ValueError(f"at most {limit} {what} are allowed, this one has {len(value)}")
        return value

    return BeforeValidator(check)


def _zero_is_absent(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_ZERO_TIME):
        return None
    return value


Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY)]
Value = Annotated[str, Field(max_length=MAX_VALUE)]
KV = Annotated[dict[Key, Value], _count_first(MAX_ENTRIES, "entries")]
"""A label or annotation map, bounded."""
LongString = Annotated[str, Field(max_length=MAX_VALUE)]
EndTime = Annotated[Timestamp | None, BeforeValidator(_zero_is_absent)]
"""An end time; Go's zero time (`0001-01-01T00:00:00Z`) means the alert has not ended."""


class AlertStatus(StrEnum):
    """The state of an alert, or of a whole group (resolved only when every alert is)."""

    FIRING = "firing"
    RESOLVED = "resolved"


class _Payload(BaseModel):
    """Read as Alertmanager sends it: camelCase names, unknown keys ignored, immutable."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class NotificationAlert(_Payload):
    """One alert of a notification."""

    status: AlertStatus
    """Whether this alert still fires."""
    labels: KV
    """The alert's identity: `alertname`, `instance`, `job`, `severity`, ..."""
    annotations: KV = Field(default_factory=dict)
    """Descriptive text: `summary`, `description`, `runbook_url`, ..."""
    starts_at: Timestamp = Field(alias="startsAt")
    """When the alert started firing; must carry an offset."""
    ends_at: EndTime = Field(default=None, alias="endsAt")
    """When it ended; None while it fires (Alertmanager sends Go's zero time)."""
    generator_url: LongString = Field(default="", alias="generatorURL")
    """Where the alert came from (a Prometheus graph link); kept, never followed."""
    fingerprint: Annotated[str, Field(max_length=MAX_KEY)] = ""
    """Alertmanager's hash of the labels (16 hex digits); may be missing in hand-made posts."""


class Notification(_Payload):
    """Alertmanager's webhook notification, version 4: one group of alerts."""

    version: str
    """Payload version; only "4" is understood."""
    group_key: LongString = Field(alias="groupKey")
    """Identifies the group (route and grouping labels); stable across its notifications."""
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    """How many alerts were left out because the receiver's `max_alerts` was reached."""
    status: AlertStatus
    """`resolved` only when every alert of the group is."""
    receiver: LongString
    """The receiver's name in Alertmanager's configuration."""
    group_labels: KV = Field(default_factory=dict, alias="groupLabels")
    """The labels the group is formed by."""
    common_labels: KV = Field(default_factory=dict, alias="commonLabels")
    """Labels every alert of the notification shares."""
    common_annotations: KV = Field(default_factory=dict, alias="commonAnnotations")
    """Annotations every alert of the notification shares."""
    external_url: LongString = Field(default="", alias="externalURL")
    """Alertmanager's own address."""
    alerts: Annotated[list[NotificationAlert], _count_first(MAX_ALERTS, "alerts")] = Field(
        min_length=1
    )
    """The group's alerts, firing and resolved."""

    @field_validator("version")
    @classmethod
    def _version_4(cls, value: str) -> str:
        if value != "4":
            raise ValueError(
                f"only version 4 of Alertmanager's webhook payload is understood, not {value!r}"
            )
        return value


def parse_notification(body: str | bytes) -> Notification:
    """Read a webhook request body; pydantic's `ValidationError` when it is not a notification."""
    return Notification.model_validate_json(body)


# ---------------------------------------------------------------------------------------------
# How labels map onto rca's fields


def _default_severities() -> dict[str, Severity]:
    table = {
        Severity.SEV1: "sev1 sev-1 p0 p1 page emergency disaster",
        Severity.SEV2: "sev2 sev-2 p2 critical crit alert",
        Severity.SEV3: "sev3 sev-3 p3 error err high major",
        Severity.SEV4: "sev4 sev-4 p4 warning warn medium minor average",
        Severity.SEV5: "sev5 sev-5 p5 info informational notice low none debug",
    }
    return {value: severity for severity, values in table.items() for value in values.split()}


class LabelMapping(Frozen):
    """How an alert's labels and annotations become an incident's severity, services and text
    (the setting `RCA_INTEGRATIONS__ALERTMANAGER__...`)."""

    severity_labels: list[str] = Field(default_factory=lambda: ["severity", "priority"])
    """Labels that hold an alert's severity; the first one present wins."""
    severity_values: dict[str, Severity] = Field(default_factory=_default_severities)
    """Severity label values (compared case-insensitively) and what they mean. By default:
    sev1, p0, p1, page, emergency, disaster → SEV1; sev2, p2, critical, crit, alert → SEV2;
    sev3, p3, error, err, high, major → SEV3; sev4, p4, warning, warn, medium, minor, average →
    SEV4; sev5, p5, info, informational, notice, low, none, debug → SEV5."""
    default_severity: Severity = Severity.SEV3
    """The severity of an alert with no severity label, or a value not in `severity_values`."""
    service_labels: list[str] = Field(
        default_factory=lambda: ["service", "app", "job", "namespace"]
    )
    """Labels that name a service; each alert's first one present gives a service."""
    title_annotations: list[str] = Field(
        default_factory=lambda: ["summary", "title", "description"]
    )
    """Annotations that describe an alert, best first: the first present gives a title, all
    present make the alert's text. Other annotations are kept among its labels."""

    @field_validator("severity_values")
    @classmethod
    def _fold_case(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        return {key.strip().lower(): severity for key, severity in value.items()}

    def severity_of(self, labels: Mapping[str, str]) -> Severity:
        """The severity an alert's labels give."""
        for label in self.severity_labels:
            found = labels.get(label, "").strip()
            if found:
                return self.severity_values.get(found.lower(), self.default_severity)
        return self.default_severity

    def service_of(self, labels: Mapping[str, str]) -> str | None:
        """The service an alert's labels name, shortened to a `Name`, or None."""
        for label in self.service_labels:
            found = _one_line(labels.get(label, ""), MAX_NAME)
            if found:
                return found
        return None


# ---------------------------------------------------------------------------------------------
# The translation


@dataclass(frozen=True)
class GroupNotification:
    """What one notification says about its group, in rca's terms."""

    group_key: str
    """The group's key; stable across the group's notifications."""
    status: AlertStatus
    """The notification's status."""
    title: str
    """One line (at most 200 characters) naming what fires and how many alerts."""
    severity: Severity
    """The worst severity over the notification's alerts."""
    services: list[str]
    """Services the alerts name, first seen first, without repeats, at most 20."""
    firing: list[Alert]
    """Every alert of the notification that fired, resolved ones too: each is evidence of
    when it started. Ids are deterministic, so a repeated notification repeats the ids."""
    started_at: datetime
    """The earliest start over the alerts."""
    all_resolved: bool
    """The group is resolved and so is every one of its alerts."""
    resolved_at: datetime | None
    """When the last alert ended, once all are resolved; else None."""
    truncated: int
    """Alerts Alertmanager left out of this notification."""
    fingerprints: frozenset[tuple[str, datetime]]
    """(fingerprint, start in UTC) of every alert: what identifies an alert across repeats."""


def translate(notification: Notification, mapping: LabelMapping) -> GroupNotification:
    """What `notification` means for rca, under `mapping`. Pure; raises nothing for a valid
    notification."""
    alerts = notification.alerts
    evidence: dict[str, Alert] = {}
    for item in alerts:
        alert = to_alert(item, mapping)
        evidence.setdefault(alert.id, alert)  # a repeat inside one notification counts once
    services: list[str] = []
    for item in alerts:
        service = mapping.service_of(item.labels)
        if service and service not in services and len(services) < MAX_SERVICES:
            services.append(service)
    severities = [mapping.severity_of(item.labels) for item in alerts]
    return GroupNotification(
        group_key=notification.group_key,
        status=notification.status,
        title=group_title(notification, mapping),
        severity=min(severities, key=_rank),
        services=services,
        firing=list(evidence.values()),
        started_at=min(item.starts_at for item in alerts),
        all_resolved=_all_resolved(notification),
        resolved_at=resolved_at(notification),
        truncated=notification.truncated_alerts,
        fingerprints=frozenset(
            (fingerprint_of(item), item.starts_at.astimezone(UTC)) for item in alerts
        ),
    )


def resolved_at(notification: Notification) -> datetime | None:
    """When the group's impact ended: the latest end over its alerts once every alert is
    resolved (never before the earliest start), else None."""
    if not _all_resolved(notification):
        return None
    ends = [item.ends_at for item in notification.alerts if item.ends_at is not None]
    if not ends:
        return None
    return max(max(ends), min(item.starts_at for item in notification.alerts))


def to_alert(item: NotificationAlert, mapping: LabelMapping) -> Alert:
    """One alert as evidence: id `am-<fingerprint>-<start, UTC, YYYYMMDDTHHMMSS>`, the alert's
    labels plus its generator URL and its non-text annotations (`annotation:<name>`), and its
    text annotations (or a sentence made from its labels) as text."""
    stamp = item.starts_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    labels = dict(item.labels)
    if item.generator_url:
        labels[GENERATOR_URL_LABEL] = item.generator_url
    for key, value in item.annotations.items():
        if key not in mapping.title_annotations:
            labels[f"{ANNOTATION_PREFIX}{key}"] = value
    name = _one_line(item.labels.get("alertname", ""), MAX_NAME)
    return Alert(
        id=f"am-{fingerprint_of(item)}-{stamp}",
        at=item.starts_at,
        source=SOURCE,
        name=name or None,
        labels=labels,
        text=_alert_text(item, mapping, name),
    )


def fingerprint_of(item: NotificationAlert) -> str:
    """The alert's fingerprint in lower-case hex; when missing or not hex, the first 16 hex
    digits of a SHA-256 of its sorted labels."""
    if _HEX.fullmatch(item.fingerprint):
        return item.fingerprint.lower()
    canonical = json.dumps(sorted(item.labels.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def group_title(notification: Notification, mapping: LabelMapping) -> str:
    """The common title annotation, else the first alert's, else the alert name; with the
    number of alerts when there are several. One line of at most 200 characters."""
    first = notification.alerts[0]
    base = (
        _first_present(notification.common_annotations, mapping.title_annotations)
        or _first_present(first.annotations, mapping.title_annotations)
        or _first_present(notification.group_labels, ["alertname"])
        or _first_present(notification.common_labels, ["alertname"])
        or _first_present(first.labels, ["alertname"])
        or "Alertmanager notification"
    )
    count = len(notification.alerts) + notification.truncated_alerts
    suffix = f" ({count} alerts)" if count > 1 else ""
    return _one_line(base, MAX_TITLE - len(suffix)) + suffix


# ---------------------------------------------------------------------------------------------
# Helpers


def _all_resolved(notification: Notification) -> bool:
    return notification.status is AlertStatus.RESOLVED and all(
        item.status is AlertStatus.RESOLVED for item in notification.alerts
    )


def _rank(severity: Severity) -> int:
    return list(Severity).index(severity)


def _first_present(values: Mapping[str, str], keys: Iterable[str]) -> str | None:
    for key in keys:
        found = values.get(key, "").strip()
        if found:
            return found
    return None


def _alert_text(item: NotificationAlert, mapping: LabelMapping, name: str) -> str:
    """The alert's text annotations, in the mapping's order and without repeats; else a
    sentence such as `HighLatency firing on checkout-7f9c:8080`."""
    parts: list[str] = []
    for key in mapping.title_annotations:
        found = item.annotations.get(key, "").strip()
        if found and found not in parts:
            parts.append(found)
    text = "\n".join(parts)
    if not text:
        where = _first_present(item.labels, ["instance", *mapping.service_labels])
        text = f"{name or 'alert'} firing" + (f" on {where}" if where else "")
    return _shorten(text, MAX_TEXT)


def _one_line(text: str, limit: int) -> str:
    """`text` with every run of whitespace (line breaks included) folded into one space, cut
    to `limit` characters."""
    return _shorten(" ".join(text.split()), limit)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
