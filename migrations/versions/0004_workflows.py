"""Workflows and their versions, their triggers' scheduling state, workflow runs and steps; events.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

``workflows`` holds one row per workflow (its newest version and status),
``workflow_versions`` one row per version (the definition, never changed),
``workflow_triggers`` the newest version's event and cron triggers of active
workflows (``next_fire_at`` and a scheduler's lease for cron ones).
``workflow_runs`` and ``workflow_run_steps`` hold the state of each run.
``events`` are numbered per tenant from ``event_sequences``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.String:
    return sa.String(36)


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workflows"),
        sa.UniqueConstraint("tenant_id", "slug", name="uq_workflows_tenant_id_slug"),
    )
    op.create_index("ix_workflows_tenant_id_created_at_id", "workflows", ["tenant_id", "created_at", "id"])

    op.create_table(
        "workflow_versions",
        sa.Column("workflow_id", _id(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("planner", sa.String(16), nullable=False),
        sa.Column("steps", _json(), nullable=False),
        sa.Column("triggers", _json(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "version", name="pk_workflow_versions"),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"], name="fk_workflow_versions_workflow_id_workflows"),
    )

    op.create_table(
        "workflow_triggers",
        sa.Column("id", _id(), nullable=False),
        sa.Column("workflow_id", _id(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(200), nullable=True),
        sa.Column("cron", sa.String(200), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("next_fire_at", _timestamp(), nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_triggers"),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"], name="fk_workflow_triggers_workflow_id_workflows"),
    )
    op.create_index("ix_workflow_triggers_workflow_id", "workflow_triggers", ["workflow_id"])
    event, cron = sa.text("kind = 'event'"), sa.text("kind = 'cron'")
    op.create_index(
        "ix_workflow_triggers_tenant_id_topic", "workflow_triggers", ["tenant_id", "topic"],
        postgresql_where=event, sqlite_where=event,
    )
    op.create_index(
        "ix_workflow_triggers_next_fire_at", "workflow_triggers", ["next_fire_at"],
        postgresql_where=cron, sqlite_where=cron,
    )

    op.create_table(
        "workflow_runs",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("workflow_id", _id(), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("input", _json(), nullable=False),
        sa.Column("plan", _json(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=True),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_runs"),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"], name="fk_workflow_runs_workflow_id_workflows"),
    )
    op.create_index(
        "ix_workflow_runs_workflow_id_created_at_id", "workflow_runs", ["workflow_id", "created_at", "id"]
    )
    op.create_index("ix_workflow_runs_tenant_id_created_at_id", "workflow_runs", ["tenant_id", "created_at", "id"])

    op.create_table(
        "workflow_run_steps",
        sa.Column("workflow_run_id", _id(), nullable=False),
        sa.Column("step_key", sa.String(63), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("job_run_id", _id(), nullable=True),
        sa.Column("input", _json(), nullable=True),
        sa.Column("output", _json(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("skip_cause", sa.String(16), nullable=True),
        sa.Column("not_before", _timestamp(), nullable=True),
        sa.Column("started_at", _timestamp(), nullable=True),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("workflow_run_id", "step_key", name="pk_workflow_run_steps"),
        sa.ForeignKeyConstraint(
            ["workflow_run_id"], ["workflow_runs.id"], name="fk_workflow_run_steps_workflow_run_id_workflow_runs"
        ),
    )

    op.create_table(
        "events",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("tenant_id", "seq", name="uq_events_tenant_id_seq"),
    )
    op.create_index("ix_events_tenant_id_topic_seq", "events", ["tenant_id", "topic", "seq"])

    op.create_table(
        "event_sequences",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_event_sequences"),
    )


def downgrade() -> None:
    op.drop_table("event_sequences")
    op.drop_table("events")
    op.drop_table("workflow_run_steps")
    op.drop_table("workflow_runs")
    op.drop_table("workflow_triggers")
    op.drop_table("workflow_versions")
    op.drop_table("workflows")
