"""Evidence after creation and the tools that send it: incident revisions (existing incidents
become revision 1), integrations, webhook deliveries, incident links, the change feed; each
draft records the incident revision it was written from.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from rca.store.engine import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(128)


def upgrade() -> None:
    op.add_column(
        "incidents", sa.Column("revision", sa.Integer, nullable=False, server_default="1")
    )
    op.add_column("drafts", sa.Column("incident_revision", sa.Integer, nullable=True))
    op.create_table(
        "incident_revisions",
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("change", sa.Text, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_incident_revisions_incident_id_incidents"
        ),
        sa.PrimaryKeyConstraint("incident_id", "revision", name="pk_incident_revisions"),
    )
    # Every incident stored so far is its own first revision.
    op.execute(
        sa.text(
            "INSERT INTO incident_revisions (incident_id, revision, content_hash, document,"
            " change, actor, source, created_at) SELECT id, 1, content_hash, document, :change,"
            " 'migration', 'migration', created_at FROM incidents"
        ).bindparams(change='{"created": true}')
    )
    op.create_table(
        "integrations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("signing_secret", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_integrations"),
    )
    op.create_index("ix_integrations_kind", "integrations", ["kind"])
    op.create_table(
        "hook_deliveries",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("integration_id", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(200), nullable=False),
        sa.Column("incident_id", ID, nullable=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("source", "delivery_id", name="pk_hook_deliveries"),
    )
    op.create_table(
        "incident_links",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("external_key", sa.String(64), nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_incident_links_incident_id_incidents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_incident_links"),
    )
    op.create_index("ix_incident_links_key", "incident_links", ["source", "external_key"])
    op.create_index("ix_incident_links_incident", "incident_links", ["incident_id"])
    op.create_table(
        "changes",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("external_id", sa.String(300), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("version", sa.String(200), nullable=True),
        sa.Column("link", sa.Text, nullable=True),
        sa.Column("actor", sa.String(100), nullable=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("known_service", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_changes"),
        sa.UniqueConstraint("external_id", name="uq_changes_external_id"),
    )
    op.create_index("ix_changes_service_at", "changes", ["service", "at"])
    op.create_index("ix_changes_at", "changes", ["at", "id"])
    op.create_table(
        "services_seen",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_services_seen"),
    )
    _note_services_stored_so_far()


def _note_services_stored_so_far() -> None:
    """Fill `services_seen` from every stored incident and postmortem revision (read in
    batches: the documents are JSON text, which SQLite and PostgreSQL query differently)."""
    conn = op.get_bind()
    names: set[str] = set()
    for query in (
        "SELECT document FROM incidents",
        "SELECT document FROM postmortem_revisions",
    ):
        result = conn.execute(sa.text(query)).yield_per(500)
        for (document,) in result:
            try:
                services = json.loads(document).get("services") or []
            except (ValueError, AttributeError):
                continue
            names.update(s[:100] for s in services if isinstance(s, str) and s.strip())
    stamp = datetime.now(UTC)
    table = sa.table("services_seen", sa.column("name"), sa.column("first_seen", UTCDateTime))
    if names:
        op.bulk_insert(table, [{"name": n, "first_seen": stamp} for n in sorted(names)])


def downgrade() -> None:
    for table in ("services_seen", "changes", "incident_links", "hook_deliveries", "integrations"):
        op.drop_table(table)
    op.drop_table("incident_revisions")
    with op.batch_alter_table("drafts") as batch:
        batch.drop_column("incident_revision")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("revision")
