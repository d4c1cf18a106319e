"""Runs that carry their own task: workflow steps with an HTTP or Python target and no endpoint.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

``runs.endpoint_id`` becomes optional; ``runs.task`` holds the target, timeout
and retry policy of such a run, ``runs.step_key`` names its workflow step,
and ``(workflow_run_id, slot)`` is unique as ``(endpoint_id, slot)`` is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("endpoint_id", existing_type=sa.String(36), nullable=True)
        batch.add_column(sa.Column("step_key", sa.String(63)))
        batch.add_column(sa.Column("task", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")))
        batch.create_unique_constraint("uq_runs_workflow_run_id_slot", ["workflow_run_id", "slot"])


def downgrade() -> None:
    op.execute("DELETE FROM runs WHERE endpoint_id IS NULL")
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("uq_runs_workflow_run_id_slot", type_="unique")
        batch.drop_column("task")
        batch.drop_column("step_key")
        batch.alter_column("endpoint_id", existing_type=sa.String(36), nullable=False)
