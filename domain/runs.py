"""Run: one execution attempt of an endpoint, and its state machine.

::

    pending ──start──► running ──succeed──► succeeded
       │                  ├──fail────────► failed
       │                  ├──time_out────► timed_out
       │                  ├──expire──────► expired   (its worker died)
       └──cancel──────────┴──cancel──────► canceled

Every final state is final: an illegal move raises ``InvalidTransition``.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any, NamedTuple

from attrs import evolve, field, frozen

from domain.errors import InvalidTransition, ValidationFailed
from domain.ids import EndpointId, JobId, RunId, TenantId, new_id
from domain.tasks import Task
from domain.validation import aware, non_empty_text, positive_int

BODY_EXCERPT_LIMIT = 4096
ERROR_LIMIT = 4096


class RunStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self not in (RunStatus.PENDING, RunStatus.RUNNING)


class RunSource(enum.StrEnum):
    """What caused a run."""

    BASELINE_CRON = "baseline-cron"
    BASELINE_INTERVAL = "baseline-interval"
    HINT_INTERVAL = "hint-interval"
    HINT_ONESHOT = "hint-oneshot"
    CLAMPED_MIN = "clamped-min"
    CLAMPED_MAX = "clamped-max"
    MANUAL = "manual"
    RETRY = "retry"
    WORKFLOW = "workflow"
    EVENT = "event"


_ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.CANCELED}),
    RunStatus.RUNNING: frozenset(
        {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.EXPIRED, RunStatus.CANCELED}
    ),
}


def can_move(current: RunStatus, to: RunStatus) -> bool:
    """True when the state machine allows ``current -> to``."""
    return to in _ALLOWED.get(current, frozenset())


def _excerpt(value: str | None) -> str | None:
    if value is None:
        return None
    return value if len(value) <= BODY_EXCERPT_LIMIT else value[:BODY_EXCERPT_LIMIT]


@frozen(kw_only=True)
class RunResult:
    """What a finished attempt produced: an HTTP status code, a bounded body excerpt, JSON output."""

    status_code: int | None = None
    body_excerpt: str | None = field(default=None, converter=_excerpt)
    output: Any = None


def _error_text(value: str | None) -> str | None:
    if value is None:
        return None
    return value if len(value) <= ERROR_LIMIT else value[:ERROR_LIMIT]


@frozen(kw_only=True)
class Run:
    """One attempt. ``slot`` is unique per endpoint, so a slot fires once.

    ``exclusive`` runs of one endpoint never overlap (the endpoint does not
    allow concurrency); ``dispatched_at`` is when a message last carried the
    run to the workers, so a reconciler can find pending runs whose message
    was lost.

    Scheduled runs use their slot time (ISO 8601) as ``slot``; retries, manual
    and workflow runs use a key of their own (``retry:<run id>``, ``manual:<id>``).
    """

    id: RunId
    tenant_id: TenantId = field(validator=non_empty_text(64))
    endpoint_id: EndpointId | None
    job_id: JobId | None = None
    workflow_run_id: str | None = None
    step_key: str | None = None
    task: Task | None = None
    status: RunStatus = field(default=RunStatus.PENDING, converter=RunStatus)
    source: RunSource = field(converter=RunSource)
    slot: str = field(validator=non_empty_text(200))
    attempt: int = field(default=1, validator=positive_int)
    params: dict[str, Any] = field(factory=dict)
    scheduled_at: datetime = field(validator=aware)
    created_at: datetime = field(validator=aware)
    started_at: datetime | None = field(default=None, validator=aware)
    finished_at: datetime | None = field(default=None, validator=aware)
    heartbeat_at: datetime | None = field(default=None, validator=aware)
    result: RunResult | None = None
    error: str | None = field(default=None, converter=_error_text)
    worker_id: str | None = None
    retry_of: RunId | None = None
    dead_lettered: bool = False
    exclusive: bool = True
    dispatched_at: datetime | None = field(default=None, validator=aware)

    def __attrs_post_init__(self) -> None:
        if (self.endpoint_id is None) == (self.task is None):
            raise ValidationFailed.field("task", "a run has an endpoint or a task, not both and not neither")

    @classmethod
    def scheduled(
        cls,
        *,
        tenant_id: TenantId,
        endpoint_id: EndpointId | None,
        job_id: JobId | None,
        source: RunSource,
        scheduled_at: datetime,
        now: datetime,
        params: dict[str, Any] | None = None,
        slot: str | None = None,
        attempt: int = 1,
        retry_of: RunId | None = None,
        workflow_run_id: str | None = None,
        exclusive: bool = True,
        step_key: str | None = None,
        task: Task | None = None,
        dispatched_at: datetime | None = None,
    ) -> Run:
        """A pending run; ``slot`` defaults to the scheduled time, which makes a slot fire once.
        ``dispatched_at``: created already handed to the broker (see :meth:`dispatched`)."""
        run_id = RunId(new_id())
        return cls(
            id=run_id,
            tenant_id=tenant_id,
            endpoint_id=endpoint_id,
            job_id=job_id,
            workflow_run_id=workflow_run_id,
            source=source,
            slot=slot if slot is not None else slot_key(scheduled_at),
            attempt=attempt,
            params=dict(params or {}),
            scheduled_at=scheduled_at,
            created_at=now,
            retry_of=retry_of,
            exclusive=exclusive,
            step_key=step_key,
            task=task,
            dispatched_at=dispatched_at,
        )

    @property
    def duration_ms(self) -> float | None:
        return duration_ms(self.started_at, self.finished_at)

    def _move(self, to: RunStatus, **changes: Any) -> Run:
        if not can_move(self.status, to):
            raise InvalidTransition(f"run {self.id}: {self.status} -> {to}")
        return evolve(self, status=to, **changes)

    def dispatched(self, *, at: datetime) -> Run:
        if self.status is not RunStatus.PENDING:
            raise InvalidTransition(f"run {self.id}: dispatch while {self.status}")
        return evolve(self, dispatched_at=at)

    def start(self, *, at: datetime, worker: str) -> Run:
        """Running for ``worker`` from ``at``; a run taken ahead of its slot (ADR 0018) is started
        as of its slot, when its worker calls its handler (see :meth:`began`)."""
        return self._move(RunStatus.RUNNING, started_at=max(at, self.scheduled_at), heartbeat_at=at, worker_id=worker)

    def began(self, *, at: datetime) -> Run:
        """A run taken ahead of its slot, whose handler began at ``at``: later than the slot its
        start recorded when the worker was busy at the slot."""
        if self.status is not RunStatus.RUNNING:
            raise InvalidTransition(f"run {self.id}: began while {self.status}")
        if self.started_at is not None and at <= self.started_at:
            return self
        return evolve(self, started_at=at)

    def beat(self, *, at: datetime) -> Run:
        """Record that the worker running this run is alive."""
        if self.status is not RunStatus.RUNNING:
            raise InvalidTransition(f"run {self.id}: heartbeat while {self.status}")
        return evolve(self, heartbeat_at=at)

    def succeed(self, *, at: datetime, result: RunResult | None = None) -> Run:
        return self._move(RunStatus.SUCCEEDED, finished_at=at, result=result)

    def fail(self, *, at: datetime, error: str, result: RunResult | None = None) -> Run:
        return self._move(RunStatus.FAILED, finished_at=at, error=error, result=result)

    def time_out(self, *, at: datetime, error: str = "run exceeded its timeout") -> Run:
        return self._move(RunStatus.TIMED_OUT, finished_at=at, error=error)

    def expire(self, *, at: datetime, error: str = "worker stopped sending heartbeats") -> Run:
        return self._move(RunStatus.EXPIRED, finished_at=at, error=error)

    def cancel(self, *, at: datetime, reason: str = "canceled") -> Run:
        return self._move(RunStatus.CANCELED, finished_at=at, error=reason)

    def redriven(self) -> Run:
        """A dead letter given a new run by an operator: no longer listed among dead letters."""
        if not self.dead_lettered:
            raise InvalidTransition(f"run {self.id} is not a dead letter")
        return evolve(self, dead_lettered=False)

    def dead_letter(self) -> Run:
        """Mark a final, unsuccessful run as having used its last attempt."""
        if not self.status.final or self.status is RunStatus.SUCCEEDED:
            raise InvalidTransition(f"run {self.id}: only a failed final run can be dead-lettered")
        return evolve(self, dead_lettered=True)


def slot_key(at: datetime) -> str:
    """The slot key of a scheduled time: ISO 8601 in UTC with microseconds."""
    from datetime import timezone

    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def duration_ms(started_at: datetime | None, finished_at: datetime | None) -> float | None:
    """``finished_at - started_at`` in milliseconds; ``None`` until both are known."""
    if started_at is None or finished_at is None:
        return None
    return (finished_at - started_at).total_seconds() * 1000


def _in_utc(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)


class RunView(NamedTuple):
    """A run as the history lists it: a read model, built straight from a stored row.

    The fields a reader sees, in the order the API shows them, with the duration
    worked out and every time in UTC (``tzinfo`` is ``timezone.utc``); none of what
    only the engine uses (tenant, slot, task, heartbeat, exclusive, dispatched_at).
    A page of runs is 50 of these: a tuple each, where a :class:`Run` carries every
    column and a state machine no reader needs.
    """

    id: RunId
    endpoint_id: EndpointId | None
    job_id: JobId | None
    workflow_run_id: str | None
    step_key: str | None
    status: RunStatus
    source: RunSource
    attempt: int
    params: dict[str, Any]
    scheduled_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    result: RunResult | None
    error: str | None
    worker_id: str | None
    retry_of: RunId | None
    dead_lettered: bool

    @classmethod
    def of(cls, run: Run) -> RunView:
        """The view of ``run`` (the in-memory adapter's rows are runs)."""
        return cls(
            id=run.id,
            endpoint_id=run.endpoint_id,
            job_id=run.job_id,
            workflow_run_id=run.workflow_run_id,
            step_key=run.step_key,
            status=run.status,
            source=run.source,
            attempt=run.attempt,
            params=dict(run.params),
            scheduled_at=run.scheduled_at.astimezone(timezone.utc),
            created_at=run.created_at.astimezone(timezone.utc),
            started_at=_in_utc(run.started_at),
            finished_at=_in_utc(run.finished_at),
            duration_ms=run.duration_ms,
            result=run.result,
            error=run.error,
            worker_id=run.worker_id,
            retry_of=run.retry_of,
            dead_lettered=run.dead_lettered,
        )
