"""Engine: wake sleeping schedulers on PostgreSQL, and an index for the runs waiting to be dispatched.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

On PostgreSQL a trigger calls ``pg_notify('ostinato_wake', '')`` when an
endpoint is inserted, or when its ``next_run_at`` moves outside a
scheduler's claim (an operator's change, a hint, a pause, a resume), so a
scheduler LISTENing on that channel plans again at once instead of after its
bounded sleep. Notifications are delivered on commit and merged within a
transaction. SQLite has no such mechanism: there the scheduler's sleep is
bounded (``OSTINATO_SCHEDULER_MAX_SLEEP_S``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAKE_FUNCTION = """
CREATE OR REPLACE FUNCTION ostinato_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ostinato_wake', '');
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_index(
        "ix_runs_pending_scheduled_at",
        "runs",
        ["scheduled_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(WAKE_FUNCTION)
    op.execute(
        "CREATE TRIGGER endpoints_wake_on_insert AFTER INSERT ON endpoints "
        "FOR EACH STATEMENT EXECUTE FUNCTION ostinato_wake()"
    )
    op.execute(
        "CREATE TRIGGER endpoints_wake_on_change AFTER UPDATE OF next_run_at ON endpoints FOR EACH ROW "
        "WHEN (NEW.next_run_at IS DISTINCT FROM OLD.next_run_at AND NEW.next_run_at IS NOT NULL "
        "AND OLD.claimed_by IS NULL) EXECUTE FUNCTION ostinato_wake()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS endpoints_wake_on_change ON endpoints")
        op.execute("DROP TRIGGER IF EXISTS endpoints_wake_on_insert ON endpoints")
        op.execute("DROP FUNCTION IF EXISTS ostinato_wake()")
    op.drop_index("ix_runs_pending_scheduled_at", table_name="runs")
