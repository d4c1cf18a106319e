"""An index on runs that are pending and were never dispatched.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

- ``ix_runs_undispatched`` (scheduled_at, id) over pending runs whose
  ``dispatched_at`` is null: the scheduler looks for these (retries, runs due
  and never sent) at every tick, and for the earliest of them to know how long
  to sleep. The runs it fires are stored already dispatched and never enter
  this index, so it holds a handful of rows where ``ix_runs_pending`` holds
  every pending run (and, until PostgreSQL vacuums, an entry for every run
  that was once pending: bitmap scans do not prune dead index entries).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDISPATCHED = sa.text("status = 'pending' AND dispatched_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_runs_undispatched", "runs", ["scheduled_at", "id"],
        postgresql_where=UNDISPATCHED, sqlite_where=UNDISPATCHED,
    )


def downgrade() -> None:
    op.drop_index("ix_runs_undispatched", table_name="runs")
