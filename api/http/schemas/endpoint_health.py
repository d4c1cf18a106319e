"""An endpoint's health: how its recent runs went, and what it does next."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta, Struct

from api.http.schemas.common import utc
from api.http.schemas.endpoints import EndpointStatusName, RunSourceName
from api.http.schemas.runs import RunStatusName
from domain.health import EndpointHealth, RunRef
from domain.runs import RunStatus

Count = Annotated[int, Meta(ge=0)]


class RunRefOut(Struct, kw_only=True):
    """A run named in the summary."""

    run_id: Annotated[str, Meta(description="The run's id.")]
    at: Annotated[datetime, Meta(description="When it finished (UTC); when it was due, if it never ran.")]
    status: RunStatusName
    error: Annotated[str | None, Meta(description="Why it did not succeed, if it did not.")]

    @classmethod
    def of(cls, ref: RunRef | None) -> RunRefOut | None:
        if ref is None:
            return None
        return cls(run_id=ref.run_id, at=utc(ref.at), status=ref.status.value, error=ref.error)


class StatusCounts(Struct, kw_only=True):
    """How many of the window's finished runs ended in each final status."""

    succeeded: Annotated[Count, Meta(description="Runs that succeeded.")]
    failed: Annotated[Count, Meta(description="Runs that failed.")]
    canceled: Annotated[Count, Meta(description="Runs canceled before they finished.")]
    timed_out: Annotated[Count, Meta(description="Runs that took longer than the endpoint's timeout.")]
    expired: Annotated[Count, Meta(description="Runs whose worker stopped sending heartbeats.")]


class EndpointHealthOut(Struct, kw_only=True):
    """An endpoint's health. A failure is a run that ended failed, timed_out or expired; a
    canceled run counts as neither success nor failure."""

    endpoint_id: Annotated[str, Meta(description="The endpoint's id.")]
    status: EndpointStatusName
    paused: Annotated[bool, Meta(description="True while the endpoint is paused (indefinitely or until paused_until).")]
    paused_until: Annotated[datetime | None, Meta(description="A timed pause ends then (UTC).")]
    failure_count: Annotated[Count, Meta(description="Consecutive failed runs.")]
    auto_pause_after: Annotated[int | None, Meta(description="It pauses after this many consecutive failures.")]
    last_run_at: Annotated[datetime | None, Meta(description="When the last run was due (UTC).")]
    next_run_at: Annotated[datetime | None, Meta(description="When the next run is due (UTC); null when none is planned.")]
    next_run_source: Annotated[RunSourceName | None, Meta(description="Why the next run is at next_run_at.")]
    window: Annotated[int, Meta(ge=1, description="How many of the newest finished runs the rate and counts cover, at most.")]
    finished: Annotated[Count, Meta(description="How many finished runs they cover (fewer than window for a young endpoint).")]
    success_rate: Annotated[
        Annotated[float, Meta(ge=0, le=1)] | None,
        Meta(description="succeeded / (finished - canceled), 0 to 1; null when none succeeded or failed."),
    ]
    counts: Annotated[StatusCounts, Meta(description="The window's finished runs by final status.")]
    pending: Annotated[Count, Meta(description="Runs waiting to start now (counted up to 500).")]
    running: Annotated[Count, Meta(description="Runs running now (counted up to 500).")]
    last_success: Annotated[RunRefOut | None, Meta(description="The newest run that succeeded.")]
    last_failure: Annotated[RunRefOut | None, Meta(description="The newest run that failed, timed out or expired.")]
    dead_lettered: Annotated[
        bool, Meta(description="True while a run failed on its last attempt and has not been retried.")
    ]
    dead_letters: Annotated[Count, Meta(description="Such runs (counted up to 500); retry them at POST /v1/dead-letters/{run_id}/retry.")]
    last_dead_letter: Annotated[RunRefOut | None, Meta(description="The newest of them.")]
    at: Annotated[datetime, Meta(description="When this summary was made (UTC).")]

    @classmethod
    def of(cls, health: EndpointHealth) -> EndpointHealthOut:
        counts = health.counts
        return cls(
            endpoint_id=health.endpoint_id,
            status=health.status.value,
            paused=health.paused,
            paused_until=utc(health.paused_until),
            failure_count=health.failure_count,
            auto_pause_after=health.auto_pause_after,
            last_run_at=utc(health.last_run_at),
            next_run_at=utc(health.next_run_at),
            next_run_source=health.next_run_source.value if health.next_run_source else None,
            window=health.window,
            finished=health.finished,
            success_rate=health.success_rate,
            counts=StatusCounts(
                succeeded=counts[RunStatus.SUCCEEDED],
                failed=counts[RunStatus.FAILED],
                canceled=counts[RunStatus.CANCELED],
                timed_out=counts[RunStatus.TIMED_OUT],
                expired=counts[RunStatus.EXPIRED],
            ),
            pending=health.pending,
            running=health.running,
            last_success=RunRefOut.of(health.last_success),
            last_failure=RunRefOut.of(health.last_failure),
            dead_lettered=health.dead_lettered,
            dead_letters=health.dead_letters,
            last_dead_letter=RunRefOut.of(health.last_dead_letter),
            at=utc(health.at),
        )
