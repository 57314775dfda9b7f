"""Webhook deliveries made into incidents: which incident a notification belongs to, and what it
adds, each delivery in one transaction.

- Alertmanager: a notification group (`groupKey`) opens an incident, or appends its alerts to
  the one it opened while that is open. Alerts dedup by fingerprint and start (their ids are
  made from both); a re-sent alert whose annotations changed keeps its first text. When every
  alert of the group has resolved, the incident's mitigation and resolution times are set and
  the link closes: the group's next firing opens a new incident. A resolved notification for a
  group with no open incident stores nothing.
- PagerDuty: `incident.triggered` opens an incident; acknowledged, escalated, reassigned and
  annotated become timeline events; resolved sets the resolution time and closes the link.
  Each event is handled once, by its id.
- GitHub: a deployment status becomes a change in the feed, once per status.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from rca.domain import Incident, new_id
from rca.domain.additions import EvidenceAdditions, IncidentChange, NewAlert, NewTimelineEvent
from rca.domain.change import ChangeEvent, ChangeKind
from rca.integrations.alertmanager import GroupNotification
from rca.integrations.github import GitHubChange
from rca.integrations.pagerduty import PagerDutyEvent
from rca.store.changes import record_change_in
from rca.store.incident_changes import change_incident_in
from rca.store.incident_records import save_incident_in
from rca.store.integrations import (
    IntegrationInfo,
    add_link,
    close_link,
    open_link,
    record_delivery,
    seen_delivery,
)
from rca.store.writes import writing

ALERTMANAGER = "alertmanager"
PAGERDUTY = "pagerduty"
GITHUB = "github"


@dataclass(frozen=True)
class Intake:
    """What one delivery did."""

    outcome: str
    """`opened`, `appended`, `resolved`, `unchanged`, `repeat` (a redelivery), `ignored`,
    `recorded` (a change)."""
    incident_id: str | None = None
    """The incident it opened or changed."""
    added: tuple[str, ...] = ()
    """Evidence ids added."""
    reason: str | None = None
    """Why nothing was stored, for `ignored`."""
    change_id: str | None = None
    """The change recorded, for GitHub."""

    @property
    def stored(self) -> bool:
        """Whether this delivery stored anything."""
        return self.outcome not in ("unchanged", "repeat", "ignored")


def _source(integration: IntegrationInfo) -> str:
    return f"{integration.kind.value}:{integration.id}"


# --- Alertmanager ------------------------------------------------------------------------------


def receive_alert_group(
    engine: Engine, integration: IntegrationInfo, group: GroupNotification
) -> Intake:
    """Open, append to or resolve the incident of an Alertmanager notification group."""
    with writing(engine) as conn:
        incident_id = open_link(conn, ALERTMANAGER, group.group_key)
        if incident_id is None:
            if group.all_resolved:
                return Intake(
                    "ignored",
                    reason="a resolved notification for a group with no open incident",
                )
            return _open_from_group(conn, integration, group)
        change = IncidentChange(
            evidence=EvidenceAdditions(alerts=[NewAlert(**a.model_dump()) for a in group.firing]),
            services=group.services,
            severity_at_least=group.severity,
            mitigated_at=group.resolved_at if group.all_resolved else None,
            resolved_at=group.resolved_at if group.all_resolved else None,
            keep_first=True,
        )
        done = change_incident_in(conn, incident_id, change, integration.name, _source(integration))
        if group.all_resolved:
            close_link(conn, ALERTMANAGER, group.group_key)
            return Intake("resolved", incident_id, tuple(done.added))
        return Intake(
            "appended" if done.added or done.fields else "unchanged", incident_id, tuple(done.added)
        )


def _open_from_group(
    conn: Connection, integration: IntegrationInfo, group: GroupNotification
) -> Intake:
    incident = Incident(
        id=new_id("inc"),
        title=group.title,
        severity=group.severity,
        services=group.services,
        started_at=group.started_at,
        detected_at=group.started_at,
        summary=f"Opened from Alertmanager by the integration {integration.name!r}.",
        alerts=group.firing,
        tags=["alertmanager"],
    )
    save_incident_in(conn, incident, integration.name, _source(integration))
    detail = {"group_key": group.group_key[:1000], "truncated_alerts": group.truncated}
    add_link(conn, ALERTMANAGER, group.group_key, incident.id, detail)
    return Intake("opened", incident.id, tuple(a.id for a in incident.alerts))


# --- PagerDuty ---------------------------------------------------------------------------------


def receive_pagerduty(
    engine: Engine, integration: IntegrationInfo, event: PagerDutyEvent
) -> Intake:
    """Open, add to or resolve the incident of a PagerDuty incident, once per event id."""
    if event.action == "ignore" or event.event is None or event.pd_incident_id is None:
        return Intake("ignored", reason=event.reason or "the event is not about an incident")
    with writing(engine) as conn:
        if seen_delivery(conn, PAGERDUTY, event.event_id) is not None:
            return Intake("repeat", reason="this event was already received")
        incident_id = open_link(conn, PAGERDUTY, event.pd_incident_id)
        if incident_id is None:
            if event.action == "resolve" or not event.title:
                record_delivery(conn, PAGERDUTY, event.event_id, integration.id, "ignored", None)
                return Intake(
                    "ignored",
                    reason=f"no open incident for PagerDuty incident {event.pd_incident_id}",
                )
            done = _open_from_pagerduty(conn, integration, event)
        else:
            resolving = event.action == "resolve"
            change = IncidentChange(
                evidence=EvidenceAdditions(timeline=[NewTimelineEvent(**event.event.model_dump())]),
                severity_at_least=event.severity,
                mitigated_at=event.occurred_at if resolving else None,
                resolved_at=event.occurred_at if resolving else None,
                keep_first=True,
            )
            changed = change_incident_in(
                conn, incident_id, change, integration.name, _source(integration)
            )
            if resolving:
                close_link(conn, PAGERDUTY, event.pd_incident_id)
            outcome = "resolved" if resolving else "appended"
            done = Intake(outcome, incident_id, tuple(changed.added))
        record_delivery(
            conn, PAGERDUTY, event.event_id, integration.id, done.outcome, done.incident_id
        )
        return done


def _open_from_pagerduty(
    conn: Connection, integration: IntegrationInfo, event: PagerDutyEvent
) -> Intake:
    assert event.event is not None and event.pd_incident_id is not None and event.title
    tags = ["pagerduty"] + ([f"pagerduty-{event.number}"] if event.number else [])
    reference = f"PagerDuty incident #{event.number}" if event.number else "A PagerDuty incident"
    incident = Incident(
        id=new_id("inc"),
        title=event.title,
        severity=event.severity or "SEV3",
        services=[event.service] if event.service else [],
        started_at=event.occurred_at,
        detected_at=event.occurred_at,
        summary=f"Opened from PagerDuty: {reference}.",
        timeline=[event.event],
        tags=tags,
    )
    save_incident_in(conn, incident, integration.name, _source(integration))
    detail = {
        "pagerduty_id": event.pd_incident_id,
        "number": event.number,
        "url": event.url,
        "service": event.service,
    }
    add_link(conn, PAGERDUTY, event.pd_incident_id, incident.id, detail)
    return Intake("opened", incident.id, (event.event.id,))


# --- GitHub ------------------------------------------------------------------------------------


def receive_github(
    engine: Engine, integration: IntegrationInfo, change: GitHubChange, delivery_id: str | None
) -> Intake:
    """Record a deployment status as a change in the feed (once per status)."""
    if change.action != "change" or change.service is None or change.at is None:
        return Intake("ignored", reason=change.reason or "not a deployment that happened")
    event = ChangeEvent(
        kind=ChangeKind.DEPLOY,
        service=change.service,
        at=change.at,
        summary=change.summary or "a deployment",
        version=change.version,
        link=change.link,
        actor=change.actor,
        external_id=change.external_id,
    )
    with writing(engine) as conn:
        if delivery_id and seen_delivery(conn, GITHUB, delivery_id) is not None:
            return Intake("repeat", reason="this delivery was already received")
        stored, new = record_change_in(conn, event, _source(integration))
        if delivery_id:
            record_delivery(conn, GITHUB, delivery_id, integration.id, "recorded", None)
        return Intake("recorded" if new else "repeat", change_id=stored.id)
