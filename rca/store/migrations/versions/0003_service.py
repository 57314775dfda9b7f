"""The service's tables: API keys, draft jobs, reviews, idempotency, action status, audit.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rca.store.engine import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_table(
        "drafts",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("incident_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime, nullable=True),
        sa.Column("deadline_at", UTCDateTime, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("retryable", sa.Boolean, nullable=False),
        sa.Column("document", sa.Text, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("finalized_postmortem_id", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_drafts_incident_id_incidents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_drafts"),
    )
    op.create_index("ix_drafts_status", "drafts", ["status", "created_at"])
    op.create_index("ix_drafts_incident_id", "drafts", ["incident_id"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("draft_id", sa.String(128), nullable=False),
        sa.Column("suggestion_id", sa.String(128), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("original", sa.Text, nullable=False),
        sa.Column("edited", sa.Text, nullable=True),
        sa.Column("draft_version", sa.Integer, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["draft_id"], ["drafts.id"], name="fk_reviews_draft_id_drafts"),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
    )
    op.create_index("ix_reviews_draft_id", "reviews", ["draft_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(32), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("principal", "key", name="pk_idempotency_keys"),
    )
    op.create_table(
        "action_status",
        sa.Column("postmortem_id", sa.String(128), nullable=False),
        sa.Column("item", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["postmortem_id"], ["postmortems.id"], name="fk_action_status_postmortem_id_postmortems"
        ),
        sa.PrimaryKeyConstraint("postmortem_id", "item", name="pk_action_status"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target_type", sa.String(40), nullable=False),
        sa.Column("target_id", sa.String(128), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("action_status")
    op.drop_table("idempotency_keys")
    op.drop_table("reviews")
    op.drop_table("drafts")
    op.drop_table("api_keys")
