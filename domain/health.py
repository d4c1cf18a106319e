"""Endpoint health: how an endpoint's recent runs went, and what it will do next.

:func:`summarize` is pure: the service hands it the endpoint and the runs it
read, and it answers the summary an operator asks for ("is this endpoint
healthy, when did it last work, when does it run next and why").

A *failure* is a run that ended ``failed``, ``timed_out`` or ``expired``; a
``canceled`` run is neither a success nor a failure, so the success rate
leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from attrs import field, frozen

from domain.endpoints import EndpointStatus, JobEndpoint
from domain.ids import EndpointId, RunId
from domain.runs import Run, RunSource, RunStatus
from domain.validation import aware

HEALTH_WINDOW = 100
"""How many of the newest finished runs the success rate and the counts cover."""

FAILURE_STATUSES: frozenset[RunStatus] = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.EXPIRED})
FINAL_STATUSES: tuple[RunStatus, ...] = tuple(status for status in RunStatus if status.final)


@frozen(kw_only=True)
class RunRef:
    """A run named in a summary: its id, when it ended (or was due), its status and error."""

    run_id: RunId
    at: datetime = field(validator=aware)
    status: RunStatus
    error: str | None = None

    @classmethod
    def of(cls, run: Run | None) -> RunRef | None:
        if run is None:
            return None
        return cls(run_id=run.id, at=run.finished_at or run.scheduled_at, status=run.status, error=run.error)


@frozen(kw_only=True)
class EndpointHealth:
    """An endpoint's health at ``now``.

    ``counts`` holds, for every final status, how many of the newest ``finished``
    runs (at most ``window``) ended so; ``success_rate`` is succeeded / (finished
    minus canceled), ``None`` when no run in the window succeeded or failed.
    ``pending`` and ``running`` count the runs in those states now.
    """

    endpoint_id: EndpointId
    status: EndpointStatus
    paused: bool
    paused_until: datetime | None
    failure_count: int
    auto_pause_after: int | None
    last_run_at: datetime | None
    next_run_at: datetime | None
    next_run_source: RunSource | None
    window: int
    finished: int
    success_rate: float | None
    counts: dict[RunStatus, int]
    pending: int
    running: int
    last_success: RunRef | None
    last_failure: RunRef | None
    dead_lettered: bool
    dead_letters: int
    last_dead_letter: RunRef | None
    at: datetime = field(validator=aware)


def finished_window(runs: Iterable[Run], window: int = HEALTH_WINDOW) -> list[Run]:
    """The first ``window`` finished runs of ``runs`` (given newest first)."""
    found: list[Run] = []
    for run in runs:
        if run.status.final:
            found.append(run)
            if len(found) >= window:
                break
    return found


def latest(runs: Iterable[Run | None]) -> Run | None:
    """The run that ended last (by ``finished_at``, else ``scheduled_at``), if any."""
    present = [run for run in runs if run is not None]
    if not present:
        return None
    return max(present, key=lambda run: (run.finished_at or run.scheduled_at, run.id))


def summarize(
    endpoint: JobEndpoint,
    *,
    recent: Sequence[Run],
    last_success: Run | None,
    last_failure: Run | None,
    pending: int,
    running: int,
    dead_letters: Sequence[Run],
    now: datetime,
    window: int = HEALTH_WINDOW,
) -> EndpointHealth:
    """The health of ``endpoint``.

    ``recent`` are its newest runs, newest first (at least ``window`` finished ones when it
    has that many); ``last_success`` and ``last_failure`` its newest succeeded and failed
    runs, which may be older than the window; ``dead_letters`` its runs waiting for an
    operator, newest first.
    """
    finished = finished_window(recent, window)
    counts = {status: 0 for status in FINAL_STATUSES}
    for run in finished:
        counts[run.status] += 1
    decided = len(finished) - counts[RunStatus.CANCELED]
    success_rate = counts[RunStatus.SUCCEEDED] / decided if decided else None
    paused = endpoint.status is EndpointStatus.PAUSED or (
        endpoint.paused_until is not None and endpoint.paused_until > now
    )
    return EndpointHealth(
        endpoint_id=endpoint.id,
        status=endpoint.status,
        paused=paused,
        paused_until=endpoint.paused_until,
        failure_count=endpoint.failure_count,
        auto_pause_after=endpoint.auto_pause_after,
        last_run_at=endpoint.last_run_at,
        next_run_at=endpoint.next_run_at,
        next_run_source=endpoint.next_run_source,
        window=window,
        finished=len(finished),
        success_rate=success_rate,
        counts=counts,
        pending=pending,
        running=running,
        last_success=RunRef.of(last_success),
        last_failure=RunRef.of(last_failure),
        dead_lettered=bool(dead_letters),
        dead_letters=len(dead_letters),
        last_dead_letter=RunRef.of(dead_letters[0] if dead_letters else None),
        at=now,
    )
