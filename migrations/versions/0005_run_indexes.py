"""Run indexes for the engine's hot path.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

- ``ix_runs_pending_endpoint`` (endpoint_id, scheduled_at, id) over pending
  runs: a worker that finishes an exclusive run looks up the oldest pending run
  of its endpoint; without it that lookup scanned every due pending run (a
  backlog of thousands) or every run the endpoint ever had.
- ``ix_runs_pending_scheduled_at`` duplicated the leading column of
  ``ix_runs_pending`` (scheduled_at, id); ``ix_runs_status`` indexed a column
  of five values that every run changes three times. Both only cost writes:
  every query that filters on status is served by a partial index or by the
  tenant, endpoint or job index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index(
        "ix_runs_pending_endpoint", "runs", ["endpoint_id", "scheduled_at", "id"],
        postgresql_where=PENDING, sqlite_where=PENDING,
    )
    op.drop_index("ix_runs_pending_scheduled_at", table_name="runs")
    op.drop_index("ix_runs_status", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_pending_scheduled_at", "runs", ["scheduled_at"], postgresql_where=PENDING, sqlite_where=PENDING)
    op.drop_index("ix_runs_pending_endpoint", table_name="runs")
