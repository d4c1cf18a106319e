"""JobEndpoint: one thing to run on a schedule, with its bounds, hints, pause and lease."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from attrs import evolve, field, frozen

from domain.errors import FieldError, InvalidTransition, ValidationFailed
from domain.governor import plan_next_run, within_bounds
from domain.hints import IntervalHint, OneShotHint
from domain.ids import EndpointId, JobId, TenantId, new_id
from domain.retry import RetryPolicy
from domain.runs import RunSource
from domain.schedules import CronSchedule, IntervalSchedule, Schedule
from domain.targets import HttpTarget, PythonTarget, Target
from domain.tasks import DEFAULT_TIMEOUT, MAX_TIMEOUT
from domain.validation import aware, non_empty_text, non_negative_int, positive_duration, positive_int, slug, text



class EndpointStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


def _check_target(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, (HttpTarget, PythonTarget)):
        raise ValidationFailed.field("target", "must be an http or python target")


def _check_schedule(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, (CronSchedule, IntervalSchedule)):
        raise ValidationFailed.field("schedule", "must give exactly one of cron or interval")


def _check_timeout(instance: Any, attribute: Any, value: timedelta) -> None:
    positive_duration(instance, attribute, value)
    if value > MAX_TIMEOUT:
        raise ValidationFailed.field(attribute.name, "must be at most 24 hours")


def _check_priority(instance: Any, attribute: Any, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 9:
        raise ValidationFailed.field(attribute.name, "must be a whole number from 0 (lowest) to 9")


@frozen(kw_only=True)
class JobEndpoint:
    """An endpoint: a target, a baseline schedule, hard bounds and the live state of its cadence.

    Every change that can move the next run (schedule, bounds, hints, pause,
    failures) goes through a method that plans it again with the governor, so
    ``next_run_at``/``next_run_source`` are always the governor's answer.
    """

    id: EndpointId
    tenant_id: TenantId = field(validator=non_empty_text(64))
    job_id: JobId | None = None
    name: str = field(validator=slug)
    description: str = field(default="", validator=text(10_000))
    target: Target = field(validator=_check_target)
    schedule: Schedule = field(validator=_check_schedule)
    min_interval: timedelta | None = field(default=None, validator=positive_duration)
    max_interval: timedelta | None = field(default=None, validator=positive_duration)
    retry: RetryPolicy = field(factory=RetryPolicy)
    timeout: timedelta = field(default=DEFAULT_TIMEOUT, validator=_check_timeout)
    priority: int = field(default=0, validator=_check_priority)
    allow_concurrent: bool = False
    auto_pause_after: int | None = field(default=None, validator=positive_int)
    interval_hint: IntervalHint | None = None
    oneshot_hint: OneShotHint | None = None
    status: EndpointStatus = field(default=EndpointStatus.ACTIVE, converter=EndpointStatus)
    paused_until: datetime | None = field(default=None, validator=aware)
    failure_count: int = field(default=0, validator=non_negative_int)
    last_run_at: datetime | None = field(default=None, validator=aware)
    next_run_at: datetime | None = field(default=None, validator=aware)
    next_run_source: RunSource | None = None
    claimed_by: str | None = None
    lease_expires_at: datetime | None = field(default=None, validator=aware)
    created_at: datetime = field(validator=aware)
    updated_at: datetime = field(validator=aware)

    def __attrs_post_init__(self) -> None:
        if (
            self.min_interval is not None
            and self.max_interval is not None
            and self.min_interval > self.max_interval
        ):
            raise ValidationFailed([FieldError("min_interval", "must not be greater than max_interval")])

    # -- construction ---------------------------------------------------------------

    @classmethod
    def new(cls, *, tenant_id: TenantId, name: str, target: Target, schedule: Schedule, now: datetime, **fields: Any) -> JobEndpoint:
        """A new active endpoint with its first run planned."""
        endpoint = cls(
            id=EndpointId(new_id()),
            tenant_id=tenant_id,
            name=name,
            target=target,
            schedule=schedule,
            created_at=now,
            updated_at=now,
            **fields,
        )
        return endpoint.replanned(now)

    # -- planning ---------------------------------------------------------------

    def replanned(self, now: datetime) -> JobEndpoint:
        """A copy whose next run is the governor's answer as of ``now``; expired hints are cleared."""
        plan = plan_next_run(self, now)
        return evolve(
            self,
            next_run_at=plan.at,
            next_run_source=plan.source,
            interval_hint=None if plan.drop_interval_hint else self.interval_hint,
            oneshot_hint=None if plan.drop_oneshot_hint else self.oneshot_hint,
        )

    def is_due(self, now: datetime) -> bool:
        return (
            self.status is EndpointStatus.ACTIVE
            and self.next_run_at is not None
            and self.next_run_at <= now
            and (self.paused_until is None or self.paused_until <= now)
            and (self.lease_expires_at is None or self.lease_expires_at <= now)
        )

    # -- changes ---------------------------------------------------------------

    def _ensure_mutable(self) -> None:
        if self.status is EndpointStatus.ARCHIVED:
            raise InvalidTransition(f"endpoint {self.name} is archived and cannot be changed")

    def changed(self, *, now: datetime, **fields: Any) -> JobEndpoint:
        """A copy with definition ``fields`` replaced and the next run planned again."""
        self._ensure_mutable()
        allowed = {
            "job_id", "name", "description", "target", "schedule", "min_interval", "max_interval",
            "retry", "timeout", "priority", "allow_concurrent", "auto_pause_after",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise TypeError(f"use the lifecycle methods to change {', '.join(sorted(unknown))}")
        return evolve(self, updated_at=now, **fields).replanned(now)

    def pause(self, *, now: datetime, until: datetime | None = None) -> JobEndpoint:
        """Pause indefinitely, or until ``until`` (which must be in the future)."""
        self._ensure_mutable()
        if until is None:
            return evolve(self, status=EndpointStatus.PAUSED, paused_until=None, updated_at=now).replanned(now)
        if until.tzinfo is None:
            raise ValidationFailed.field("until", "must be timezone-aware")
        if until <= now:
            raise ValidationFailed.field("until", "must be in the future")
        return evolve(self, status=EndpointStatus.ACTIVE, paused_until=until, updated_at=now).replanned(now)

    def resume(self, *, now: datetime) -> JobEndpoint:
        self._ensure_mutable()
        return evolve(self, status=EndpointStatus.ACTIVE, paused_until=None, updated_at=now).replanned(now)

    def archive(self, *, now: datetime) -> JobEndpoint:
        if self.status is EndpointStatus.ARCHIVED:
            return self
        return evolve(
            self, status=EndpointStatus.ARCHIVED, next_run_at=None, next_run_source=None,
            claimed_by=None, lease_expires_at=None, updated_at=now,
        )

    def reset_failures(self, *, now: datetime) -> JobEndpoint:
        self._ensure_mutable()
        return evolve(self, failure_count=0, updated_at=now).replanned(now)

    def set_interval_hint(self, hint: IntervalHint, *, now: datetime) -> JobEndpoint:
        """Replace the baseline cadence until the hint expires; refused outside the hard bounds."""
        self._ensure_mutable()
        if hint.expires_at <= now:
            raise ValidationFailed.field("expires_at", "must be in the future")
        if not within_bounds(self, hint.interval):
            raise ValidationFailed.field("interval", _bounds_message(self))
        return evolve(self, interval_hint=hint, updated_at=now).replanned(now)

    def clear_interval_hint(self, *, now: datetime) -> JobEndpoint:
        self._ensure_mutable()
        return evolve(self, interval_hint=None, updated_at=now).replanned(now)

    def set_oneshot_hint(self, hint: OneShotHint, *, now: datetime) -> JobEndpoint:
        """Run once at ``hint.run_at`` if that is earlier than the baseline."""
        self._ensure_mutable()
        if hint.expires_at <= now:
            raise ValidationFailed.field("expires_at", "must be in the future")
        if hint.run_at > hint.expires_at:
            raise ValidationFailed.field("run_at", "must not be after expires_at")
        return evolve(self, oneshot_hint=hint, updated_at=now).replanned(now)

    def clear_oneshot_hint(self, *, now: datetime) -> JobEndpoint:
        self._ensure_mutable()
        return evolve(self, oneshot_hint=None, updated_at=now).replanned(now)

    # -- scheduling -------------------------------------------------------------

    def claimed(self, *, owner: str, until: datetime) -> JobEndpoint:
        return evolve(self, claimed_by=owner, lease_expires_at=until)

    def fired(self, *, now: datetime) -> JobEndpoint:  # changes only FIRED_FIELDS
        """The endpoint after its due run was created: the slot is spent, a one-shot hint is
        consumed, the lease is released, and the next run is planned."""
        if self.next_run_at is None:
            raise InvalidTransition(f"endpoint {self.name} has no run to fire")
        # A run at or after the one-shot time serves the hint, whatever its source says:
        # a one-shot pushed later by ``min_interval`` is planned as ``clamped-min``.
        spent_oneshot = self.next_run_source is RunSource.HINT_ONESHOT or (
            self.oneshot_hint is not None and self.oneshot_hint.run_at <= self.next_run_at
        )
        return evolve(
            self,
            last_run_at=self.next_run_at,
            oneshot_hint=None if spent_oneshot else self.oneshot_hint,
            claimed_by=None,
            lease_expires_at=None,
        ).replanned(now)

    def record_success(self, *, now: datetime) -> JobEndpoint:
        if self.failure_count == 0:
            return self
        return evolve(self, failure_count=0).replanned(now)

    def record_failure(self, *, now: datetime) -> JobEndpoint:
        """Count a final failure; auto-pause after ``auto_pause_after`` consecutive ones."""
        failures = self.failure_count + 1
        status = self.status
        if self.auto_pause_after is not None and failures >= self.auto_pause_after and status is EndpointStatus.ACTIVE:
            status = EndpointStatus.PAUSED
        return evolve(self, failure_count=failures, status=status).replanned(now)


FIRED_FIELDS = (
    "next_run_at", "next_run_source", "last_run_at", "interval_hint", "oneshot_hint", "claimed_by", "lease_expires_at",
)
"""The fields :meth:`JobEndpoint.fired` changes (what ``EndpointRepository.store_fired`` stores)."""


def _bounds_message(endpoint: JobEndpoint) -> str:
    low = f"{endpoint.min_interval.total_seconds():g}s" if endpoint.min_interval else "0s"
    high = f"{endpoint.max_interval.total_seconds():g}s" if endpoint.max_interval else "unbounded"
    return f"must be within the endpoint's bounds [{low}, {high}]"
