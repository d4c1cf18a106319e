"""The worker's use case: execute runs by id, exactly once each, and record what happened.

A worker moves each run from pending to running atomically (a duplicated
message finds it running and does nothing), executes it with the endpoint's
timeout while sending heartbeats, then records the outcome, its retries and
its logs in one transaction. If the worker dies, the heartbeats stop and the
reconciler expires the run and retries it per policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from attrs import frozen
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from domain.errors import InfrastructureError
from domain.execution import DispatchItem, Dispatcher, Executable, ExecutorRegistry, Outcome
from domain.endpoints import JobEndpoint
from domain.ids import EndpointId, RunId
from domain.ports import Clock, UnitOfWorkFactory
from domain.run_logs import LOG_LINES_PER_RUN, LogLevel, LogLine
from domain.runs import Run, RunStatus
from services.outcomes import Finished, OutcomeRecorder, Settled, endpoint_ids


@frozen
class _Result:
    outcome: Outcome
    logs: tuple[tuple[datetime, LogLevel, str], ...]


class ExecutionService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        executors: ExecutorRegistry,
        dispatcher: Dispatcher,
        recorder: OutcomeRecorder | None = None,
        heartbeat: timedelta = timedelta(seconds=5),
        finish_within: timedelta = timedelta(seconds=60),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._executors = executors
        self._dispatcher = dispatcher
        self._recorder = recorder or OutcomeRecorder()
        self._heartbeat = heartbeat
        self._finish_within = finish_within

    async def execute(self, run_ids: Sequence[RunId], *, worker: str) -> list[Run]:
        """Execute the pending runs among ``run_ids``; return them as recorded (final states)."""
        now = self._clock.now()
        async with self._uow() as uow:
            started = await uow.runs.start(run_ids, at=now, worker=worker)
            endpoints = await uow.endpoints.get_many(endpoint_ids(started)) if started else {}
            await uow.commit()
        if not started:
            return []
        results = await self._run_all(started, endpoints)
        return await self._finish(started, results, endpoints, worker=worker)

    async def _run_all(self, runs: Sequence[Run], endpoints: dict) -> dict[RunId, _Result | None]:
        tasks = {run.id: asyncio.ensure_future(self._one(run, _executable(run, endpoints))) for run in runs}
        pending = set(tasks.values())
        while pending:
            _, pending = await asyncio.wait(pending, timeout=self._heartbeat.total_seconds())
            if not pending:
                break
            alive = [rid for rid, task in tasks.items() if not task.done()]
            try:
                async with self._uow() as uow:
                    gone = await uow.runs.beat(alive, at=self._clock.now())
                    await uow.commit()
            except InfrastructureError:
                continue  # the database is away; the reconciler decides if we were gone too long
            for run_id in gone:
                tasks[run_id].cancel()
        results: dict[RunId, _Result | None] = {}
        for run_id, task in tasks.items():
            results[run_id] = None if task.cancelled() else task.result()
        return results

    async def _one(self, run: Run, endpoint: Executable | None) -> _Result:
        logs: list[tuple[datetime, LogLevel, str]] = []

        def log(level: LogLevel, message: str) -> None:
            if len(logs) < LOG_LINES_PER_RUN:
                logs.append((self._clock.now(), LogLevel(level), message))

        if endpoint is None:
            return _Result(Outcome.failed("the run's endpoint no longer exists", retryable=False), ())
        timeout = endpoint.timeout.total_seconds()
        try:
            executor = self._executors.for_kind(endpoint.target.kind)
            outcome = await asyncio.wait_for(executor.execute(endpoint, dict(run.params), log=log), timeout)
        except TimeoutError:
            outcome = Outcome(status=RunStatus.TIMED_OUT, error=f"run exceeded its timeout of {timeout:g}s")
        except Exception as exc:  # an executor bug must not lose the run
            outcome = Outcome.failed(f"executor error: {type(exc).__name__}: {exc}")
        return _Result(outcome, tuple(logs))

    async def _finish(
        self, started: Sequence[Run], results: dict[RunId, _Result | None], seen: dict[EndpointId, JobEndpoint], *,
        worker: str,
    ) -> list[Run]:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(InfrastructureError),
            # the database may be restarting: keep the result in hand for a while rather than
            # let the reconciler expire (and rerun) a run that finished
            stop=stop_after_delay(self._finish_within.total_seconds()),
            wait=wait_exponential(multiplier=0.2, max=5),
            reraise=True,
        ):
            with attempt:
                settled, follow_ups = await self._record(started, results, seen, worker=worker)
        if follow_ups:
            await self._dispatcher.dispatch(follow_ups)
        await self._recorder.after_commit(settled)
        return settled.final

    async def _record(
        self, started: Sequence[Run], results: dict[RunId, _Result | None], seen: dict[EndpointId, JobEndpoint], *,
        worker: str,
    ) -> tuple[Settled, list[DispatchItem]]:
        now = self._clock.now()
        async with self._uow() as uow:
            # endpoints before runs, as every writer locks them: no deadlock with a concurrent start.
            # Only those whose failure count may change: a success on an endpoint that had no
            # failures when its run started leaves the endpoint as it is.
            endpoints = await uow.endpoints.get_many(_to_lock(started, results, seen), for_update=True)
            current = await uow.runs.get_many([r.id for r in started], for_update=True)
            finished: list[Finished] = []
            lines: list[LogLine] = []
            for run_id, result in results.items():
                run = current.get(run_id)
                if result is None or run is None or run.status is not RunStatus.RUNNING or run.worker_id != worker:
                    continue  # canceled or expired meanwhile: its new state stands
                finished.append(Finished(_apply(run, result.outcome, now), result.outcome.retryable))
                lines.extend(
                    LogLine(run_id=run.id, tenant_id=run.tenant_id, seq=i, at=at, level=level, message=msg)
                    for i, (at, level, msg) in enumerate(result.logs, start=1)
                )
            if lines:
                await uow.run_logs.append(lines)
            # the runs each finished exclusive run frees, marked before settling: settling (with a
            # workflow listener) takes the tenant's event sequence, after which nothing waits
            follow_ups = await _next_exclusive(uow, [item.run for item in finished], now, seen)
            await uow.runs.mark_dispatched([item.run_id for item in follow_ups], at=now)
            settled = await self._recorder.settle(uow, finished, now=now, locked=endpoints)
            await uow.commit()
        return settled, [*settled.follow_ups, *follow_ups]


def _executable(run: Run, endpoints: dict) -> Executable | None:
    """What the run executes: its task, or its endpoint (``None`` if that endpoint is gone)."""
    return run.task if run.task is not None else endpoints.get(run.endpoint_id)


def _apply(run: Run, outcome: Outcome, now: datetime) -> Run:
    if outcome.status is RunStatus.SUCCEEDED:
        return run.succeed(at=now, result=outcome.result)
    if outcome.status is RunStatus.TIMED_OUT:
        return run.time_out(at=now, error=outcome.error or "run exceeded its timeout")
    return run.fail(at=now, error=outcome.error or "failed", result=outcome.result)


def _to_lock(
    started: Sequence[Run], results: dict[RunId, _Result | None], seen: dict[EndpointId, JobEndpoint]
) -> list[EndpointId]:
    """The endpoints whose failure count the outcomes may change: those of runs that did not
    succeed, and of successes on endpoints that had failures (or were not found) at start."""
    wanted = set()
    for run in started:
        if run.endpoint_id is None:
            continue
        result = results.get(run.id)
        endpoint = seen.get(run.endpoint_id)
        succeeded = result is not None and result.outcome.status is RunStatus.SUCCEEDED
        if not succeeded or endpoint is None or endpoint.failure_count:
            wanted.add(run.endpoint_id)
    return sorted(wanted)


async def _next_exclusive(
    uow, finished: Sequence[Run], now: datetime, seen: dict[EndpointId, JobEndpoint]
) -> list[DispatchItem]:
    """The oldest pending run of each endpoint an exclusive run just freed, with its endpoint's
    priority (as seen when the batch started; looked up for endpoints not seen then)."""
    freed = sorted({r.endpoint_id for r in finished if r.exclusive})
    if not freed:
        return []
    waiting = await uow.runs.oldest_pending(freed, now=now)
    if not waiting:
        return []
    unseen = sorted({run.endpoint_id for run in waiting} - seen.keys())
    endpoints = {**seen, **(await uow.endpoints.get_many(unseen) if unseen else {})}
    return [
        DispatchItem(run_id=run.id, priority=endpoints[run.endpoint_id].priority if run.endpoint_id in endpoints else 0)
        for run in waiting
    ]
