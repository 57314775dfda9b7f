"""On PostgreSQL, a function that takes the draft submissions' advisory lock and then counts the
waiting drafts, in one round trip: the lock is held from there to the commit, and every round
trip the submitting process makes under it (each one waiting for a busy process to run Python
again) is one more wait for every other submission. A VOLATILE function takes a fresh snapshot
for each statement it runs, so the count sees every submission that committed while this one
waited for the lock. SQLite serializes writers itself and needs nothing.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION rca_waiting_drafts(lock_key bigint, own varchar, asking varchar)
        RETURNS TABLE (total bigint, mine bigint)
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(lock_key);
            RETURN QUERY
                SELECT count(*),
                       count(*) FILTER (WHERE drafts.requested_key = asking)
                FROM drafts
                WHERE drafts.status = 'queued' AND drafts.id <> own;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION rca_waiting_drafts(bigint, varchar, varchar)")
