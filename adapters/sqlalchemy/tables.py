"""The schema, as SQLAlchemy Core tables; ``migrations/`` creates it, a test checks they agree.

Jobs, endpoints and runs; each run's log lines; API tokens (hashes only);
the append-only audit trail; workflows (one row each, and one row per
version), their triggers' scheduling state, workflow runs and their steps;
events, numbered per tenant.

Conventions: ids are UUID text, enumerations are their string values,
durations are float seconds (columns ending ``_s``), timestamps are UTC
(:class:`UtcDateTime`), and JSON is JSONB on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID = 36  # a UUID as text
TENANT = 64
NAME = 63  # slugs and endpoint names
STATUS = 16
SOURCE = 32
WORKER = 200
SLOT = 200


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC and always read back aware in UTC.

    PostgreSQL keeps it as ``timestamptz``. SQLite has no time zones, so the
    value is stored as naive UTC text, whose fixed width keeps text order
    equal to time order.

    asyncpg already reads ``timestamptz`` as aware datetimes in UTC, so on
    PostgreSQL values are read back without a processor (a page of 50 runs
    carries 250 timestamps; converting each again cost about 0.1 ms of CPU
    per page, some 7% of serving it).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"refusing to store a naive datetime: {value!r}")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _json() -> Any:
    """JSON, as JSONB on PostgreSQL."""
    return JSON().with_variant(JSONB(), "postgresql")


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, on both dialects."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


jobs = Table(
    "jobs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("slug", String(NAME), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("labels", _json(), nullable=False),
    Column("annotations", _json(), nullable=False),
    Column("provenance", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "slug"),
    Index("ix_jobs_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("job_id", String(ID), ForeignKey("jobs.id")),
    Column("name", String(NAME), nullable=False),
    Column("description", Text, nullable=False),
    # target: "http" with {method, url, headers, body} or "python" with {handler, params}
    Column("target_kind", String(STATUS), nullable=False),
    Column("target", _json(), nullable=False),
    # schedule: a cron expression in a time zone, or an interval
    Column("schedule_cron", String(200)),
    Column("schedule_timezone", String(64)),
    Column("schedule_interval_s", Double),
    Column("min_interval_s", Double),
    Column("max_interval_s", Double),
    Column("retry_max_attempts", Integer, nullable=False),
    Column("retry_backoff_s", Double, nullable=False),
    Column("retry_backoff_max_s", Double, nullable=False),
    Column("retry_jitter", Boolean, nullable=False),
    Column("timeout_s", Double, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("allow_concurrent", Boolean, nullable=False),
    Column("auto_pause_after", Integer),
    Column("interval_hint_s", Double),
    Column("interval_hint_expires_at", UtcDateTime),
    Column("interval_hint_reason", Text),
    Column("oneshot_hint_run_at", UtcDateTime),
    Column("oneshot_hint_expires_at", UtcDateTime),
    Column("oneshot_hint_reason", Text),
    Column("status", String(STATUS), nullable=False),
    Column("paused_until", UtcDateTime),
    Column("failure_count", Integer, nullable=False),
    Column("last_run_at", UtcDateTime),
    Column("next_run_at", UtcDateTime),
    Column("next_run_source", String(SOURCE)),
    Column("claimed_by", String(WORKER)),
    Column("lease_expires_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name"),
    Index("ix_endpoints_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    Index("ix_endpoints_job_id", "job_id"),
    Index("ix_endpoints_due", "next_run_at", **_where("status = 'active'")),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    # a run executes its endpoint, or (a workflow step with its own target) the task it carries
    Column("endpoint_id", String(ID), ForeignKey("endpoints.id")),
    Column("job_id", String(ID)),
    Column("workflow_run_id", String(ID)),
    Column("step_key", String(NAME)),
    Column("task", _json()),
    Column("status", String(STATUS), nullable=False),
    Column("source", String(SOURCE), nullable=False),
    Column("slot", String(SLOT), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("params", _json(), nullable=False),
    Column("scheduled_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("heartbeat_at", UtcDateTime),
    # finished_at - started_at, kept for queries over run times; never read back
    Column("duration_s", Double),
    # result: has_result tells "no result" apart from a result whose fields are all empty
    Column("has_result", Boolean, nullable=False),
    Column("status_code", Integer),
    Column("body_excerpt", Text),
    Column("output", _json()),
    Column("error", Text),
    Column("worker_id", String(WORKER)),
    Column("retry_of", String(ID)),
    Column("dead_lettered", Boolean, nullable=False),
    # exclusive runs of one endpoint never overlap; dispatched_at: when a message last carried it
    Column("exclusive", Boolean, nullable=False),
    Column("dispatched_at", UtcDateTime),
    UniqueConstraint("endpoint_id", "slot"),
    UniqueConstraint("workflow_run_id", "slot"),
    Index("ix_runs_tenant_id_scheduled_at_id", "tenant_id", "scheduled_at", "id"),
    Index("ix_runs_endpoint_id_scheduled_at_id", "endpoint_id", "scheduled_at", "id"),
    Index("ix_runs_job_id_scheduled_at_id", "job_id", "scheduled_at", "id"),
    Index(
        "ix_runs_dead_lettered",
        "tenant_id",
        "scheduled_at",
        postgresql_where=text("dead_lettered"),
        sqlite_where=text("dead_lettered = 1"),
    ),
    # the reconciler's "pending, due, not (recently) dispatched" and the workers' "is one running"
    Index("ix_runs_pending", "scheduled_at", "id", **_where("status = 'pending'")),
    Index("ix_runs_running", "endpoint_id", **_where("status = 'running'")),
    # a freed exclusive endpoint's oldest pending run
    Index("ix_runs_pending_endpoint", "endpoint_id", "scheduled_at", "id", **_where("status = 'pending'")),
    # the scheduler's "due and never sent" (retries) at every tick: runs it fires are stored sent
    Index(
        "ix_runs_undispatched", "scheduled_at", "id", **_where("status = 'pending' AND dispatched_at IS NULL")
    ),
)

run_logs = Table(
    "run_logs",
    metadata,
    Column("run_id", String(ID), ForeignKey("runs.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("level", String(STATUS), nullable=False),
    Column("message", Text, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("role", String(STATUS), nullable=False),
    Column("name", String(200), nullable=False),
    Column("hash", String(64), nullable=False),  # SHA-256 of the secret, hex; never the secret
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    UniqueConstraint("hash"),
    Index("ix_api_tokens_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    Index("ix_api_tokens_created_at_id", "created_at", "id"),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("token_id", String(ID)),
    Column("action", String(100), nullable=False),
    Column("target_kind", String(40), nullable=False),
    Column("target_id", String(200)),
    Column("summary", _json(), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_audit_entries_tenant_id_at_id", "tenant_id", "at", "id"),
    Index("ix_audit_entries_tenant_id_target_kind_target_id", "tenant_id", "target_kind", "target_id"),
)

workflows = Table(
    "workflows",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("slug", String(NAME), nullable=False),
    Column("version", Integer, nullable=False),  # the newest version
    Column("status", String(STATUS), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "slug"),
    Index("ix_workflows_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
)

# one row per version, never changed once written; steps and triggers in the public vocabulary
workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("workflow_id", String(ID), ForeignKey("workflows.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("planner", String(STATUS), nullable=False),
    Column("steps", _json(), nullable=False),
    Column("triggers", _json(), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# the newest version's triggers of active workflows: event topics to look up, cron slots to fire
workflow_triggers = Table(
    "workflow_triggers",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("workflow_id", String(ID), ForeignKey("workflows.id"), nullable=False),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("kind", String(STATUS), nullable=False),
    Column("topic", String(200)),
    Column("cron", String(200)),
    Column("timezone", String(64)),
    Column("next_fire_at", UtcDateTime),
    Column("claimed_by", String(WORKER)),
    Column("lease_expires_at", UtcDateTime),
    Index("ix_workflow_triggers_workflow_id", "workflow_id"),
    Index("ix_workflow_triggers_tenant_id_topic", "tenant_id", "topic", **_where("kind = 'event'")),
    Index("ix_workflow_triggers_next_fire_at", "next_fire_at", **_where("kind = 'cron'")),
)

workflow_runs = Table(
    "workflow_runs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("workflow_id", String(ID), ForeignKey("workflows.id"), nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("trigger", String(STATUS), nullable=False),
    Column("input", _json(), nullable=False),
    Column("plan", _json()),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("error", Text),
    Index("ix_workflow_runs_workflow_id_created_at_id", "workflow_id", "created_at", "id"),
    Index("ix_workflow_runs_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
)

workflow_run_steps = Table(
    "workflow_run_steps",
    metadata,
    Column("workflow_run_id", String(ID), ForeignKey("workflow_runs.id"), primary_key=True),
    Column("step_key", String(NAME), primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("remaining", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("job_run_id", String(ID)),
    Column("input", _json()),
    Column("output", _json()),
    Column("error", Text),
    Column("skip_cause", String(STATUS)),
    Column("not_before", UtcDateTime),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
)

events = Table(
    "events",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(TENANT), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("topic", String(200), nullable=False),
    Column("payload", _json(), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "seq"),
    Index("ix_events_tenant_id_topic_seq", "tenant_id", "topic", "seq"),
)

# each tenant's last event number; its row is locked from an append until commit
event_sequences = Table(
    "event_sequences",
    metadata,
    Column("tenant_id", String(TENANT), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)
