"""The tables of evidence that arrives after an incident is created, and of the tools that send
it: incident revisions, integrations and their credentials, webhook deliveries, the links from
another tool's incident or alert group to ours, and the change feed.

Declared on the same `metadata` as `rca.store.engine`'s tables (migration 0006 creates them).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from rca.store.engine import ID, UTCDateTime, metadata

incident_revisions = Table(
    "incident_revisions",
    metadata,
    Column("incident_id", ID, ForeignKey("incidents.id"), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("document", Text, nullable=False),
    Column("change", Text, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("source", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
"""Every state an incident has been in: revision 1 as created, one more per change (evidence
added, times set). `change` is JSON: the evidence ids added, the fields set."""

integrations = Table(
    "integrations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=True),
    Column("signing_secret", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)
"""Tools allowed to send webhooks: a bearer token (only its SHA-256 kept) or a signing secret
(kept, since checking an HMAC needs it)."""
Index("ix_integrations_kind", integrations.c.kind)

hook_deliveries = Table(
    "hook_deliveries",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("delivery_id", String(200), primary_key=True),
    Column("integration_id", String(32), nullable=False),
    Column("outcome", String(200), nullable=False),
    Column("incident_id", ID, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
)
"""Webhook deliveries already handled, so a redelivery stores nothing twice."""

incident_links = Table(
    "incident_links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("external_key", String(64), nullable=False),
    Column("incident_id", ID, ForeignKey("incidents.id"), nullable=False),
    Column("open", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
"""Which incident another tool's incident or alert group became (`external_key` is a SHA-256 of
the tool's own key); `open` until it resolves, when the next notification opens a new one."""
Index("ix_incident_links_key", incident_links.c.source, incident_links.c.external_key)
Index("ix_incident_links_incident", incident_links.c.incident_id)
Index(
    "ux_incident_links_open",
    incident_links.c.source,
    incident_links.c.external_key,
    unique=True,
    sqlite_where=incident_links.c.open,
    postgresql_where=incident_links.c.open,
)
"""At most one open link per outside key: of two first notifications of one alert group at once
(on PostgreSQL, where writers do not queue), one opens the incident, the other collides (409)
and, sent again, appends to it."""

changes = Table(
    "changes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("external_id", String(300), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("service", String(100), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("summary", Text, nullable=False),
    Column("version", String(200), nullable=True),
    Column("link", Text, nullable=True),
    Column("actor", String(100), nullable=True),
    Column("source", String(100), nullable=False),
    Column("known_service", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("external_id", name="uq_changes_external_id"),
)
"""Deploys, config changes and feature-flag flips, as sent; `known_service` is false for a service
no incident or postmortem names (stored all the same, and flagged)."""
Index("ix_changes_service_at", changes.c.service, changes.c.at)
Index("ix_changes_at", changes.c.at, changes.c.id)

services_seen = Table(
    "services_seen",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("first_seen", UTCDateTime, nullable=False),
)
"""Every service an incident or postmortem has named: what makes a change's service known."""
