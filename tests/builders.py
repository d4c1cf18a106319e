"""Builders of valid entities for tests: each makes a sensible default and takes overrides.

    job = a_job(slug="billing")
    endpoint = an_endpoint(job=job, priority=5)
    run = a_run(endpoint=endpoint, status=RunStatus.RUNNING)

Slugs and names are unique per call, so builders can be called repeatedly in
one store without colliding.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from domain.endpoints import JobEndpoint
from domain.hints import IntervalHint, OneShotHint
from domain.ids import EndpointId, JobId, RunId, TenantId, new_id
from domain.jobs import Job
from domain.retry import RetryPolicy
from domain.runs import Run, RunResult, RunSource, RunStatus, slot_key
from domain.schedules import CronSchedule, IntervalSchedule
from domain.targets import HttpTarget, PythonTarget

UTC = timezone.utc
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TENANT = TenantId("acme")
OTHER_TENANT = TenantId("globex")

_numbers = itertools.count(1)


def _n() -> int:
    return next(_numbers)


def a_job(**overrides: Any) -> Job:
    n = _n()
    fields: dict[str, Any] = {
        "id": JobId(new_id()),
        "tenant_id": TENANT,
        "slug": f"job-{n}",
        "name": f"Job {n}",
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return Job(**fields)


def an_http_target(**overrides: Any) -> HttpTarget:
    fields: dict[str, Any] = {"method": "POST", "url": "https://example.com/hooks/run"}
    fields.update(overrides)
    return HttpTarget(**fields)


def an_endpoint(*, job: Job | None = None, **overrides: Any) -> JobEndpoint:
    """An active endpoint (in ``job`` when given) on a one-minute interval, due at ``T0 + 60s``."""
    n = _n()
    fields: dict[str, Any] = {
        "id": EndpointId(new_id()),
        "tenant_id": job.tenant_id if job is not None else TENANT,
        "job_id": job.id if job is not None else None,
        "name": f"endpoint-{n}",
        "target": an_http_target(),
        "schedule": IntervalSchedule(interval=timedelta(seconds=60)),
        "next_run_at": T0 + timedelta(seconds=60),
        "next_run_source": RunSource.BASELINE_INTERVAL,
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return JobEndpoint(**fields)


def a_run(*, endpoint: JobEndpoint | None = None, **overrides: Any) -> Run:
    """A pending run of ``endpoint`` scheduled at ``T0``; ``slot`` defaults to the scheduled time."""
    fields: dict[str, Any] = {
        "id": RunId(new_id()),
        "tenant_id": endpoint.tenant_id if endpoint is not None else TENANT,
        "endpoint_id": endpoint.id if endpoint is not None else EndpointId(new_id()),
        "job_id": endpoint.job_id if endpoint is not None else None,
        "source": RunSource.BASELINE_INTERVAL,
        "scheduled_at": T0,
        "created_at": T0,
    }
    fields.update(overrides)
    fields.setdefault("slot", slot_key(fields["scheduled_at"]))
    return Run(**fields)


# -- entities with every optional field set, for round trips -------------------------

AT = datetime(2026, 3, 29, 0, 59, 58, 123456, tzinfo=UTC)  # microseconds, hours before Berlin's DST change


def a_fully_loaded_job(**overrides: Any) -> Job:
    n = _n()
    fields: dict[str, Any] = {
        "id": JobId(new_id()),
        "tenant_id": TENANT,
        "slug": f"loaded-job-{n}",
        "name": f"Nightly billing sync — Zürich {n}",
        "description": "Sync invoices from the ledger.\nRuns after the close of books; never twice.",
        "status": "paused",
        "labels": {"team": "billing", "tier": "gold"},
        "annotations": {"owner": "ana@example.com", "runbook": "https://wiki.example.com/billing"},
        "provenance": "manifest:billing.yaml@3f2a",
        "created_at": AT,
        "updated_at": AT + timedelta(seconds=1, microseconds=1),
    }
    fields.update(overrides)
    return Job(**fields)


def a_fully_loaded_endpoint(*, job: Job, **overrides: Any) -> JobEndpoint:
    """An endpoint with every field away from its default: cron in a time zone, bounds, hints, lease."""
    n = _n()
    fields: dict[str, Any] = {
        "id": EndpointId(new_id()),
        "tenant_id": job.tenant_id,
        "job_id": job.id,
        "name": f"loaded-endpoint-{n}",
        "description": "Pulls the ledger; see the runbook.",
        "target": HttpTarget(
            method="PUT",
            url="https://api.example.com/v2/sync?full=1",
            headers={"Authorization": "secret://env/LEDGER_TOKEN", "X-Trace": "ostinato"},
            body={"since": "yesterday", "limit": 500, "dry_run": False, "tags": ["a", "ü"], "ratio": 0.25, "none": None},
        ),
        "schedule": CronSchedule(cron="30 2 * * 1-5", timezone="Europe/Berlin"),
        "min_interval": timedelta(seconds=90),
        "max_interval": timedelta(hours=36),
        "retry": RetryPolicy(max_attempts=4, backoff=timedelta(seconds=1.5), backoff_max=timedelta(minutes=10), jitter=False),
        "timeout": timedelta(seconds=45),
        "priority": 7,
        "allow_concurrent": True,
        "auto_pause_after": 5,
        "interval_hint": IntervalHint(interval=timedelta(minutes=5), expires_at=AT + timedelta(hours=2), reason="backlog"),
        "oneshot_hint": OneShotHint(run_at=AT + timedelta(minutes=3), expires_at=AT + timedelta(hours=1), reason="re-run"),
        "status": "active",
        "paused_until": AT + timedelta(minutes=1),
        "failure_count": 3,
        "last_run_at": AT - timedelta(hours=1),
        "next_run_at": AT + timedelta(minutes=3),
        "next_run_source": RunSource.HINT_ONESHOT,
        "claimed_by": "scheduler-7",
        "lease_expires_at": AT + timedelta(seconds=30),
        "created_at": AT - timedelta(days=2),
        "updated_at": AT,
    }
    fields.update(overrides)
    return JobEndpoint(**fields)


def a_python_endpoint(*, job: Job | None = None, **overrides: Any) -> JobEndpoint:
    return an_endpoint(
        job=job,
        target=PythonTarget(handler="billing.tasks:sync_invoices", params={"full": True, "batch": [1, 2, 3]}),
        **overrides,
    )


def a_finished_run(*, endpoint: JobEndpoint, **overrides: Any) -> Run:
    """A failed, dead-lettered retry with a result, an error and every timestamp set."""
    fields: dict[str, Any] = {
        "workflow_run_id": "wf-run-42",
        "status": RunStatus.FAILED,
        "source": RunSource.RETRY,
        "slot": f"retry:{new_id()}",
        "attempt": 3,
        "params": {"full": True, "batch": [1, 2], "note": "ü"},
        "scheduled_at": AT,
        "created_at": AT - timedelta(seconds=1),
        "started_at": AT + timedelta(milliseconds=5),
        "heartbeat_at": AT + timedelta(seconds=1),
        "finished_at": AT + timedelta(seconds=2, microseconds=7),
        "result": RunResult(
            status_code=502,
            body_excerpt="<html>Bad gateway</html>",
            output={"rows": 12, "ok": False, "items": [{"id": 1}, None, 2.5, "x"], "empty": {}},
        ),
        "error": "HTTP 502 from upstream",
        "worker_id": "worker-3/thread-2",
        "retry_of": RunId(new_id()),
        "dead_lettered": True,
        "exclusive": False,
        "dispatched_at": AT + timedelta(milliseconds=1),
    }
    fields.update(overrides)
    return a_run(endpoint=endpoint, **fields)
