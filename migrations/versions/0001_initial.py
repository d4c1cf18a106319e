"""Jobs, endpoints, runs and their logs, API tokens, the audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written out in full rather than imported from ``adapters.sqlalchemy.tables``:
a migration is a record of one moment and must not change when the tables do.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
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
        "jobs",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("labels", _json(), nullable=False),
        sa.Column("annotations", _json(), nullable=False),
        sa.Column("provenance", sa.Text(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("tenant_id", "slug", name="uq_jobs_tenant_id_slug"),
    )
    op.create_index("ix_jobs_tenant_id_created_at_id", "jobs", ["tenant_id", "created_at", "id"])

    op.create_table(
        "endpoints",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("job_id", _id(), nullable=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("target", _json(), nullable=False),
        sa.Column("schedule_cron", sa.String(200), nullable=True),
        sa.Column("schedule_timezone", sa.String(64), nullable=True),
        sa.Column("schedule_interval_s", sa.Double(), nullable=True),
        sa.Column("min_interval_s", sa.Double(), nullable=True),
        sa.Column("max_interval_s", sa.Double(), nullable=True),
        sa.Column("retry_max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_backoff_s", sa.Double(), nullable=False),
        sa.Column("retry_backoff_max_s", sa.Double(), nullable=False),
        sa.Column("retry_jitter", sa.Boolean(), nullable=False),
        sa.Column("timeout_s", sa.Double(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("allow_concurrent", sa.Boolean(), nullable=False),
        sa.Column("auto_pause_after", sa.Integer(), nullable=True),
        sa.Column("interval_hint_s", sa.Double(), nullable=True),
        sa.Column("interval_hint_expires_at", _timestamp(), nullable=True),
        sa.Column("interval_hint_reason", sa.Text(), nullable=True),
        sa.Column("oneshot_hint_run_at", _timestamp(), nullable=True),
        sa.Column("oneshot_hint_expires_at", _timestamp(), nullable=True),
        sa.Column("oneshot_hint_reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("paused_until", _timestamp(), nullable=True),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("last_run_at", _timestamp(), nullable=True),
        sa.Column("next_run_at", _timestamp(), nullable=True),
        sa.Column("next_run_source", sa.String(32), nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", _timestamp(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_endpoints"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_endpoints_job_id_jobs"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_endpoints_tenant_id_name"),
    )
    op.create_index("ix_endpoints_tenant_id_created_at_id", "endpoints", ["tenant_id", "created_at", "id"])
    op.create_index("ix_endpoints_job_id", "endpoints", ["job_id"])
    active = sa.text("status = 'active'")
    op.create_index("ix_endpoints_due", "endpoints", ["next_run_at"], postgresql_where=active, sqlite_where=active)

    op.create_table(
        "runs",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("endpoint_id", _id(), nullable=False),
        sa.Column("job_id", _id(), nullable=True),
        sa.Column("workflow_run_id", _id(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("slot", sa.String(200), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("scheduled_at", _timestamp(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=True),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.Column("heartbeat_at", _timestamp(), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column("has_result", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("body_excerpt", sa.Text(), nullable=True),
        sa.Column("output", _json(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("retry_of", _id(), nullable=True),
        sa.Column("dead_lettered", sa.Boolean(), nullable=False),
        sa.Column("exclusive", sa.Boolean(), nullable=False),
        sa.Column("dispatched_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(["endpoint_id"], ["endpoints.id"], name="fk_runs_endpoint_id_endpoints"),
        sa.UniqueConstraint("endpoint_id", "slot", name="uq_runs_endpoint_id_slot"),
    )
    op.create_index("ix_runs_tenant_id_scheduled_at_id", "runs", ["tenant_id", "scheduled_at", "id"])
    op.create_index("ix_runs_endpoint_id_scheduled_at_id", "runs", ["endpoint_id", "scheduled_at", "id"])
    op.create_index("ix_runs_job_id_scheduled_at_id", "runs", ["job_id", "scheduled_at", "id"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index(
        "ix_runs_dead_lettered",
        "runs",
        ["tenant_id", "scheduled_at"],
        postgresql_where=sa.text("dead_lettered"),
        sqlite_where=sa.text("dead_lettered = 1"),
    )
    pending, running = sa.text("status = 'pending'"), sa.text("status = 'running'")
    op.create_index("ix_runs_pending", "runs", ["scheduled_at", "id"], postgresql_where=pending, sqlite_where=pending)
    op.create_index("ix_runs_running", "runs", ["endpoint_id"], postgresql_where=running, sqlite_where=running)

    op.create_table(
        "run_logs",
        sa.Column("run_id", _id(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_run_logs"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_logs_run_id_runs"),
    )

    op.create_table(
        "api_tokens",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("last_used_at", _timestamp(), nullable=True),
        sa.Column("revoked_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("hash", name="uq_api_tokens_hash"),
    )
    op.create_index("ix_api_tokens_tenant_id_created_at_id", "api_tokens", ["tenant_id", "created_at", "id"])
    op.create_index("ix_api_tokens_created_at_id", "api_tokens", ["created_at", "id"])

    op.create_table(
        "audit_entries",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("token_id", _id(), nullable=True),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target_kind", sa.String(40), nullable=False),
        sa.Column("target_id", sa.String(200), nullable=True),
        sa.Column("summary", _json(), nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_entries"),
    )
    op.create_index("ix_audit_entries_tenant_id_at_id", "audit_entries", ["tenant_id", "at", "id"])
    op.create_index(
        "ix_audit_entries_tenant_id_target_kind_target_id", "audit_entries", ["tenant_id", "target_kind", "target_id"]
    )


def downgrade() -> None:
    op.drop_table("audit_entries")
    op.drop_table("api_tokens")
    op.drop_table("run_logs")
    op.drop_table("runs")
    op.drop_table("endpoints")
    op.drop_table("jobs")
