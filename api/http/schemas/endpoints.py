"""Endpoints: one thing to run on a schedule, with its bounds, hints and live state."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from api.http.schemas.common import Id, NextCursor, in_seconds, literal_of, seconds, timestamp, utc
from domain.endpoints import EndpointStatus, JobEndpoint
from domain.hints import IntervalHint, OneShotHint
from domain.runs import RunSource
from domain.schedules import CronSchedule
from domain.targets import HttpTarget, PythonTarget

HttpMethod = Annotated[
    Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], Meta(description="The HTTP method.")
]
EndpointStatusName = Annotated[
    literal_of(EndpointStatus),
    Meta(description="active, paused (indefinitely; see paused_until for a timed pause) or archived."),
]
RunSourceName = Annotated[literal_of(RunSource), Meta(description="What causes (or caused) a run.")]
EndpointName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
        description="Unique within the tenant: lowercase letters, digits and '-'.",
    ),
]
Description = Annotated[str, Meta(max_length=10_000, description="What the endpoint does, in natural language.")]
JobRef = Annotated[str | None, Meta(description="The job the endpoint belongs to; null for a standalone endpoint.")]
Priority = Annotated[int, Meta(ge=0, le=9, description="0 (lowest) to 9; higher runs first when many are due.")]
AllowConcurrent = Annotated[bool, Meta(description="Whether a run may start while another of this endpoint runs.")]
AutoPause = Annotated[
    Annotated[int, Meta(ge=1)] | None,
    Meta(description="Pause after this many consecutive failed runs; null never pauses."),
]


class HttpTargetSpec(Struct, tag_field="kind", tag="http", kw_only=True, forbid_unknown_fields=True):
    """Call an HTTP URL. The URL and header values may hold `secret://env/NAME` references,
    resolved when the run executes and never stored resolved."""

    method: HttpMethod = "POST"
    url: Annotated[str, Meta(min_length=1, max_length=4096, description="An http:// or https:// URL.")]
    headers: Annotated[dict[str, str], Meta(description="Request headers.")] = {}
    body: Annotated[Any, Meta(description="A JSON body, or null for none.")] = None


class PythonTargetSpec(Struct, tag_field="kind", tag="python", kw_only=True, forbid_unknown_fields=True):
    """Call a Python handler registered under a name."""

    handler: Annotated[str, Meta(min_length=1, max_length=200, description="The handler's name, e.g. examples.hello.")]
    params: Annotated[dict[str, Any], Meta(description="Keyword arguments (JSON) passed to the handler.")] = {}


Target = Annotated[
    HttpTargetSpec | PythonTargetSpec, Meta(description="What a run does: `kind` is http or python.")
]


class ScheduleSpec(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The baseline schedule: exactly one of `cron` (five fields, read in `timezone`) or `interval_s`."""

    cron: Annotated[str | None, Meta(description="A five-field cron expression, e.g. */5 * * * *.")] = None
    timezone: Annotated[str | None, Meta(description="The IANA time zone the cron reads in (default UTC).")] = None
    interval_s: Annotated[Annotated[float, Meta(gt=0)] | None, Meta(description="Run every this many seconds.")] = None


class RetrySpec(Struct, kw_only=True, forbid_unknown_fields=True):
    """How a failed run is retried; fields left out take their defaults."""

    max_attempts: Annotated[int, Meta(ge=1, le=100, description="Attempts in all; 1 (default) never retries.")] | UnsetType = UNSET
    backoff_s: seconds("The wait after the first failure (default 1), doubled after each further one.") | UnsetType = UNSET
    backoff_max_s: seconds("The longest wait between attempts (default 300).") | UnsetType = UNSET
    jitter: Annotated[bool, Meta(description="Spread waits over the upper half of each window (default true).")] | UnsetType = UNSET


class RetryOut(Struct, kw_only=True):
    """How a failed run is retried."""

    max_attempts: Annotated[int, Meta(ge=1, description="Attempts in all; 1 never retries.")]
    backoff_s: Annotated[float, Meta(description="The wait after the first failure, in seconds; doubles after each.")]
    backoff_max_s: Annotated[float, Meta(description="The longest wait between attempts, in seconds.")]
    jitter: Annotated[bool, Meta(description="Whether waits are spread over the upper half of each window.")]


class EndpointCreate(Struct, kw_only=True, forbid_unknown_fields=True):
    """A new endpoint: `name`, `target` and `schedule` are required; its first run is planned at once."""

    job_id: JobRef | UnsetType = UNSET
    name: EndpointName
    description: Description | UnsetType = UNSET
    target: Target
    schedule: Annotated[ScheduleSpec, Meta(description="The baseline schedule.")]
    min_interval_s: Annotated[Annotated[float, Meta(gt=0)] | None, Meta(description="Runs are never closer than this (seconds).")] | UnsetType = UNSET
    max_interval_s: Annotated[Annotated[float, Meta(gt=0)] | None, Meta(description="Runs are never further apart than this (seconds).")] | UnsetType = UNSET
    retry: Annotated[RetrySpec, Meta(description="The retry policy.")] | UnsetType = UNSET
    timeout_s: seconds("A run fails when it takes longer (default 30, at most a day).") | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    allow_concurrent: AllowConcurrent | UnsetType = UNSET
    auto_pause_after: AutoPause | UnsetType = UNSET


class EndpointPatch(Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields to change; the others keep their value. `target`, `schedule` and `retry` are replaced
    whole. The next run is planned again at once. An archived endpoint cannot change."""

    job_id: JobRef | UnsetType = UNSET
    name: EndpointName | UnsetType = UNSET
    description: Description | None | UnsetType = UNSET
    target: Target | UnsetType = UNSET
    schedule: Annotated[ScheduleSpec, Meta(description="The baseline schedule.")] | UnsetType = UNSET
    min_interval_s: Annotated[Annotated[float, Meta(gt=0)] | None, Meta(description="Runs are never closer than this (seconds).")] | UnsetType = UNSET
    max_interval_s: Annotated[Annotated[float, Meta(gt=0)] | None, Meta(description="Runs are never further apart than this (seconds).")] | UnsetType = UNSET
    retry: Annotated[RetrySpec, Meta(description="The retry policy.")] | UnsetType = UNSET
    timeout_s: seconds("A run fails when it takes longer (at most a day).") | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    allow_concurrent: AllowConcurrent | UnsetType = UNSET
    auto_pause_after: AutoPause | UnsetType = UNSET


class PauseRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Pause until a time, or (without `until`) until resumed."""

    until: timestamp("Resume by itself at this time, which must be in the future.") | None | UnsetType = UNSET


Reason = Annotated[str, Meta(max_length=500, description="Why, for the people reading the endpoint later.")]


class IntervalHintRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Run every `interval_s` instead of the baseline until the hint expires; give `ttl_s` or
    `expires_at`. The interval must lie within the endpoint's bounds."""

    interval_s: seconds("The cadence while the hint lasts.")
    ttl_s: seconds("The hint expires this long from now.") | UnsetType = UNSET
    expires_at: timestamp("The hint expires at this time.") | UnsetType = UNSET
    reason: Reason | UnsetType = UNSET


class OneShotHintRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Run once at `run_at` if that is earlier than the baseline; give `ttl_s` or `expires_at`."""

    run_at: timestamp("When to run.")
    ttl_s: seconds("The hint expires this long from now.") | UnsetType = UNSET
    expires_at: timestamp("The hint expires at this time (not before run_at).") | UnsetType = UNSET
    reason: Reason | UnsetType = UNSET


class RunNowRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Run an endpoint now. `params` apply to this run only: merged over a Python target's
    params, or sent in an HTTP target's JSON body (the query for GET, HEAD, DELETE and OPTIONS)."""

    params: Annotated[dict[str, Any], Meta(description="Parameters for this run only.")] = {}


class IntervalHintOut(Struct, kw_only=True):
    """A live interval hint."""

    interval_s: Annotated[float, Meta(description="The cadence while the hint lasts, in seconds.")]
    expires_at: Annotated[datetime, Meta(description="When the hint stops applying (UTC).")]
    reason: Reason


class OneShotHintOut(Struct, kw_only=True):
    """A live one-shot hint."""

    run_at: Annotated[datetime, Meta(description="When the extra run is wanted (UTC).")]
    expires_at: Annotated[datetime, Meta(description="When the hint stops applying (UTC).")]
    reason: Reason


class HintsOut(Struct, kw_only=True):
    """The endpoint's hints; either may be null."""

    interval: Annotated[IntervalHintOut | None, Meta(description="The interval hint, if one is set.")]
    oneshot: Annotated[OneShotHintOut | None, Meta(description="The one-shot hint, if one is set.")]


class EndpointOut(Struct, kw_only=True):
    """An endpoint: its definition and the live state of its cadence."""

    id: Id
    job_id: JobRef
    name: EndpointName
    description: Description
    target: Target
    schedule: Annotated[ScheduleSpec, Meta(description="The baseline schedule.")]
    min_interval_s: Annotated[float | None, Meta(description="Runs are never closer than this (seconds).")]
    max_interval_s: Annotated[float | None, Meta(description="Runs are never further apart than this (seconds).")]
    retry: Annotated[RetryOut, Meta(description="The retry policy.")]
    timeout_s: Annotated[float, Meta(description="A run fails when it takes longer (seconds).")]
    priority: Priority
    allow_concurrent: AllowConcurrent
    auto_pause_after: AutoPause
    hints: Annotated[HintsOut, Meta(description="Temporary changes to the cadence.")]
    paused_until: Annotated[datetime | None, Meta(description="Paused until this time (UTC), if a timed pause is set.")]
    failure_count: Annotated[int, Meta(ge=0, description="Consecutive failed runs.")]
    last_run_at: Annotated[datetime | None, Meta(description="When the last run was due (UTC).")]
    next_run_at: Annotated[datetime | None, Meta(description="When the next run is due (UTC); null when none is planned.")]
    next_run_source: Annotated[RunSourceName | None, Meta(description="Why the next run is at next_run_at.")]
    status: EndpointStatusName
    created_at: Annotated[datetime, Meta(description="When the endpoint was created (UTC).")]
    updated_at: Annotated[datetime, Meta(description="When the endpoint last changed (UTC).")]

    @classmethod
    def of(cls, endpoint: JobEndpoint) -> EndpointOut:
        retry = endpoint.retry
        return cls(
            id=endpoint.id,
            job_id=endpoint.job_id,
            name=endpoint.name,
            description=endpoint.description,
            target=_target(endpoint.target),
            schedule=_schedule(endpoint),
            min_interval_s=in_seconds(endpoint.min_interval),
            max_interval_s=in_seconds(endpoint.max_interval),
            retry=RetryOut(
                max_attempts=retry.max_attempts,
                backoff_s=retry.backoff.total_seconds(),
                backoff_max_s=retry.backoff_max.total_seconds(),
                jitter=retry.jitter,
            ),
            timeout_s=endpoint.timeout.total_seconds(),
            priority=endpoint.priority,
            allow_concurrent=endpoint.allow_concurrent,
            auto_pause_after=endpoint.auto_pause_after,
            hints=HintsOut(interval=_interval_hint(endpoint.interval_hint), oneshot=_oneshot_hint(endpoint.oneshot_hint)),
            paused_until=utc(endpoint.paused_until),
            failure_count=endpoint.failure_count,
            last_run_at=utc(endpoint.last_run_at),
            next_run_at=utc(endpoint.next_run_at),
            next_run_source=endpoint.next_run_source.value if endpoint.next_run_source else None,
            status=endpoint.status.value,
            created_at=utc(endpoint.created_at),
            updated_at=utc(endpoint.updated_at),
        )


class EndpointList(Struct, kw_only=True):
    """A page of endpoints, newest first."""

    items: Annotated[list[EndpointOut], Meta(description="The endpoints on this page.")]
    next_cursor: NextCursor


def _target(target: HttpTarget | PythonTarget) -> HttpTargetSpec | PythonTargetSpec:
    if isinstance(target, HttpTarget):
        return HttpTargetSpec(method=target.method, url=target.url, headers=dict(target.headers), body=target.body)
    return PythonTargetSpec(handler=target.handler, params=dict(target.params))


def _schedule(endpoint: JobEndpoint) -> ScheduleSpec:
    schedule = endpoint.schedule
    if isinstance(schedule, CronSchedule):
        return ScheduleSpec(cron=schedule.cron, timezone=schedule.timezone)
    return ScheduleSpec(interval_s=schedule.interval.total_seconds())


def _interval_hint(hint: IntervalHint | None) -> IntervalHintOut | None:
    if hint is None:
        return None
    return IntervalHintOut(interval_s=hint.interval.total_seconds(), expires_at=utc(hint.expires_at), reason=hint.reason)


def _oneshot_hint(hint: OneShotHint | None) -> OneShotHintOut | None:
    if hint is None:
        return None
    return OneShotHintOut(run_at=utc(hint.run_at), expires_at=utc(hint.expires_at), reason=hint.reason)
