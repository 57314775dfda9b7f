"""Integrations: the tools allowed to send rca webhooks, and what they have sent.

An Alertmanager integration authenticates with a bearer token, `rcai_<id>_<secret>`, kept like
an API key (only the SHA-256 of the secret is stored). PagerDuty and GitHub sign each delivery
with an HMAC of the body, so their signing secret is kept as given: checking an HMAC needs the
secret itself (protect the database accordingly). PagerDuty makes its own secret when the
subscription is created and it is pasted here; for GitHub rca makes one unless one is given.

Deliveries already handled are remembered by (source, delivery id), in the same transaction as
what they stored, so a redelivery stores nothing twice. Links map another tool's incident or
alert group to the rca incident it opened.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from rca.errors import InvalidArgument, NotFound
from rca.store.engine import read_transaction
from rca.store.integration_tables import hook_deliveries, incident_links, integrations
from rca.store.writes import now, writing

_TOKEN = re.compile(r"^rcai_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
MAX_SECRET = 500


class IntegrationKind(StrEnum):
    """The tools rca takes webhooks from."""

    ALERTMANAGER = "alertmanager"
    """Prometheus Alertmanager: bearer token."""
    PAGERDUTY = "pagerduty"
    """PagerDuty v3 webhooks: HMAC signature with the subscription's secret."""
    GITHUB = "github"
    """GitHub webhooks (deployment_status): HMAC signature with the webhook's secret."""

    @property
    def signed(self) -> bool:
        """Whether deliveries are signed (else they carry a bearer token)."""
        return self is not IntegrationKind.ALERTMANAGER


@dataclass(frozen=True)
class IntegrationInfo:
    """A stored integration, without its credential."""

    id: str
    kind: IntegrationKind
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Created:
    """A new integration and the credential to configure the tool with (shown once)."""

    info: IntegrationInfo
    credential: str
    """The bearer token (Alertmanager) or the signing secret (GitHub, or PagerDuty's own)."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _info(row: Any) -> IntegrationInfo:
    return IntegrationInfo(
        row.id, IntegrationKind(row.kind), row.name, row.created_at, row.revoked_at
    )


class Integrations:
    """The integrations table, deliveries and links."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, kind: IntegrationKind, name: str, secret: str | None = None) -> Created:
        """A new integration. PagerDuty needs `secret` (the one PagerDuty showed); GitHub takes
        one or makes one; Alertmanager always gets a new token."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidArgument("an integration needs a name of 1 to 100 characters")
        ident = secrets.token_hex(6)
        token_hash: str | None = None
        signing: str | None = None
        if kind is IntegrationKind.ALERTMANAGER:
            if secret is not None:
                raise InvalidArgument("an Alertmanager integration makes its own token")
            raw = secrets.token_urlsafe(32)
            token_hash = _hash(raw)
            credential = f"rcai_{ident}_{raw}"
        else:
            if secret is None and kind is IntegrationKind.PAGERDUTY:
                raise InvalidArgument(
                    "a PagerDuty integration needs the signing secret PagerDuty showed when "
                    "the webhook subscription was created (--secret-stdin)"
                )
            signing = secret.strip() if secret is not None else secrets.token_urlsafe(32)
            if not 16 <= len(signing) <= MAX_SECRET or not signing.isprintable():
                raise InvalidArgument(
                    f"a signing secret must be 16 to {MAX_SECRET} printable characters"
                )
            credential = signing
        stamp = now()
        with writing(self.engine) as conn:
            conn.execute(
                insert(integrations).values(
                    id=ident,
                    kind=kind.value,
                    name=name,
                    token_hash=token_hash,
                    signing_secret=signing,
                    created_at=stamp,
                )
            )
        return Created(IntegrationInfo(ident, kind, name, stamp, None), credential)

    def revoke(self, ident: str) -> IntegrationInfo:
        """Revoke an integration (idempotent); its deliveries get 401 from then on."""
        with writing(self.engine) as conn:
            row = conn.execute(select(integrations).where(integrations.c.id == ident)).one_or_none()
            if row is None:
                raise NotFound("integration", ident)
            if row.revoked_at is None:
                conn.execute(
                    update(integrations).where(integrations.c.id == ident).values(revoked_at=now())
                )
        return self.get(ident)

    def authenticate(self, kind: IntegrationKind, token: str) -> IntegrationInfo | None:
        """The active integration of `kind` a bearer token belongs to, or None."""
        found = _TOKEN.match(token)
        with read_transaction(self.engine) as conn:
            row = (
                conn.execute(
                    select(integrations).where(integrations.c.id == found.group("id"))
                ).one_or_none()
                if found
                else None
            )
        presented = _hash(found.group("secret") if found else "x" * 43)
        stored = row.token_hash if row is not None and row.token_hash else _hash("y" * 43)
        if not hmac.compare_digest(presented, stored) or row is None:
            return None
        if row.kind != kind.value or row.revoked_at is not None:
            return None
        return _info(row)

    def get(self, ident: str) -> IntegrationInfo:
        """One integration."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(integrations).where(integrations.c.id == ident)).one_or_none()
        if row is None:
            raise NotFound("integration", ident)
        return _info(row)

    def signing_secrets(self, kind: IntegrationKind) -> list[tuple[str, str]]:
        """(integration id, secret) of every active integration of a signed kind."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(integrations.c.id, integrations.c.signing_secret).where(
                    integrations.c.kind == kind.value,
                    integrations.c.revoked_at.is_(None),
                    integrations.c.signing_secret.is_not(None),
                )
            ).all()
        return [(r.id, r.signing_secret) for r in rows]

    def list(self) -> list[IntegrationInfo]:
        """Every integration, newest first."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(integrations).order_by(integrations.c.created_at.desc())
            ).all()
        return [_info(r) for r in rows]


# --- inside a caller's write transaction -------------------------------------------------------


def external_key(value: str) -> str:
    """The stored form of another tool's key (any length): its SHA-256."""
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


def seen_delivery(conn: Connection, source: str, delivery_id: str) -> str | None:
    """The outcome of a delivery already handled, or None."""
    outcome: str | None = conn.execute(
        select(hook_deliveries.c.outcome).where(
            hook_deliveries.c.source == source, hook_deliveries.c.delivery_id == delivery_id
        )
    ).scalar_one_or_none()
    return outcome


def record_delivery(
    conn: Connection,
    source: str,
    delivery_id: str,
    integration_id: str,
    outcome: str,
    incident_id: str | None,
) -> None:
    """Remember a delivery as handled (with what came of it)."""
    conn.execute(
        insert(hook_deliveries).values(
            source=source,
            delivery_id=delivery_id[:200],
            integration_id=integration_id,
            outcome=outcome[:200],
            incident_id=incident_id,
            received_at=datetime.now(UTC),
        )
    )


def open_link(conn: Connection, source: str, key: str) -> str | None:
    """The incident another tool's open incident or group `key` opened, if it is still open."""
    found: str | None = conn.execute(
        select(incident_links.c.incident_id)
        .where(
            incident_links.c.source == source,
            incident_links.c.external_key == external_key(key),
            incident_links.c.open.is_(True),
        )
        .order_by(incident_links.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return found


def add_link(
    conn: Connection, source: str, key: str, incident_id: str, detail: dict[str, Any]
) -> None:
    """Record that `key` of `source` opened `incident_id` (open until `close_link`)."""
    stamp = now()
    conn.execute(
        insert(incident_links).values(
            source=source,
            external_key=external_key(key),
            incident_id=incident_id,
            open=True,
            detail=json.dumps(detail, sort_keys=True),
            created_at=stamp,
            updated_at=stamp,
        )
    )


def close_link(conn: Connection, source: str, key: str) -> None:
    """Mark the open link of `key` closed: its next notification opens a new incident."""
    conn.execute(
        update(incident_links)
        .where(
            incident_links.c.source == source,
            incident_links.c.external_key == external_key(key),
            incident_links.c.open.is_(True),
        )
        .values(open=False, updated_at=now())
    )


@dataclass(frozen=True)
class IncidentLink:
    """Where an incident came from: the tool and what it said of its own incident or group."""

    source: str
    open: bool
    detail: dict[str, Any]
    created_at: datetime


def links_of(engine: Engine, incident_id: str) -> list[IncidentLink]:
    """The tools' incidents or groups that opened or fed `incident_id`, oldest first."""
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(incident_links)
            .where(incident_links.c.incident_id == incident_id)
            .order_by(incident_links.c.id)
        ).all()
    return [IncidentLink(r.source, r.open, json.loads(r.detail), r.created_at) for r in rows]
