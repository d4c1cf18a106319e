"""The worker's use case: execute runs by id, exactly once each, and record what happened.

A worker moves each run from pending to running atomically (a duplicated
message finds it running and does nothing), executes it with the endpoint's
timeout while sending heartbeats, then records the outcome, its retries and
its logs in one transaction. If the worker dies, the heartbeats stop and the
reconciler expires the run and retries it per policy.

A recording may make runs ready to start at once (a workflow's next step, an
exclusive endpoint's next run). With ``continue_locally``, the worker starts
those itself, right after the commit, as many as the batch it finished had
runs, and sends only the others through the dispatcher: a chain of steps
does not cross the broker at each step. The runs are stored pending and
marked dispatched in the recording transaction, exactly as the runs it
sends, so nothing changes for correctness: the start moves them to running
atomically (a duplicated message finds them running), and if the worker dies
before it starts them, the reconciler dispatches them again, as it does a lost
message. A worker continues so for at most ``continue_for`` per message, and
not once it is stopping (:meth:`ExecutionService.stop_continuing`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, TypeVar

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

log = logging.getLogger("ostinato")


@frozen
class _Result:
    outcome: Outcome
    logs: tuple[tuple[datetime, LogLevel, str], ...]
    finished_at: datetime
    # when the handler of a run taken ahead of its slot began (None: the run was due when taken)
    began_at: datetime | None = None


@frozen
class _Finishing:
    """One batch's runs and what became of them, waiting to be recorded; ``room``: how many of the
    runs the recording makes ready the batch may go on to execute itself."""

    started: Sequence[Run]
    results: dict[RunId, _Result | None]
    seen: dict[EndpointId, JobEndpoint]
    room: int = 0


@frozen
class _Finished:
    """A batch's runs as recorded, and the runs made ready that it goes on to execute."""

    final: list[Run]
    carried: list[DispatchItem]


START_LANES = 2
"""Start transactions one worker may have in flight at once."""
_EPOCH = datetime.fromtimestamp(0, tz=timezone.utc)
# how long to sleep again when the loop woke before a slot (its timers round to its clock's resolution)
_WAKE_AGAIN_S = 0.0005

K = TypeVar("K")
T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[K, T, R]):
    """Hands the items submitted under one key to ``work`` together: an item submitted while
    ``lanes`` earlier calls for its key are in flight joins the next call. Alone, an item goes at
    once; under load, the batches of many messages share one transaction (group commit).

    ``work(key, items)`` returns one result per item, in order; if it raises, every item of
    that call gets the exception.
    """

    def __init__(self, work: Callable[[K, list[T]], Awaitable[list[R]]], *, lanes: int = 1) -> None:
        if lanes < 1:
            raise ValueError(f"a coalescer needs at least one lane, not {lanes}")
        self._work = work
        self._lanes = lanes
        # per event loop: a service may outlive a loop (tests run each in its own)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queues[K, T, R]] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, key: K, item: T) -> R:
        loop = asyncio.get_running_loop()
        queues = self._loops.get(loop)
        if queues is None:
            queues = self._loops[loop] = _Queues()
        future: asyncio.Future[R] = loop.create_future()
        queues.queued.setdefault(key, []).append((item, future))
        lanes = queues.draining.setdefault(key, set())
        if len(lanes) < self._lanes:
            lanes.add(asyncio.ensure_future(self._drain(queues, key)))
        return await future

    async def _drain(self, queues: _Queues[K, T, R], key: K) -> None:
        group: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while queues.queued.get(key):
                group = queues.queued.pop(key)
                try:
                    results = await self._work(key, [item for item, _ in group])
                except Exception as exc:
                    _settle(group, exc)
                else:
                    for (_, future), result in zip(group, results, strict=True):
                        if not future.done():
                            future.set_result(result)
                group = []
        except BaseException as exc:  # canceled (the loop is closing): nobody may wait forever
            _settle([*group, *queues.queued.pop(key, [])], exc)
            raise
        finally:  # at once, not in a callback: an item submitted from now on starts a lane
            lanes = queues.draining[key]
            lanes.discard(asyncio.current_task())  # type: ignore[arg-type]
            if not lanes:
                del queues.draining[key]


class _Queues(Generic[K, T, R]):
    def __init__(self) -> None:
        self.queued: dict[K, list[tuple[T, asyncio.Future[R]]]] = {}
        self.draining: dict[K, set[asyncio.Future[None]]] = {}


def _settle(group: Sequence[tuple[object, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc if isinstance(exc, Exception) else InfrastructureError(f"worker stopping: {exc!r}"))


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
        continue_locally: bool = False,
        continue_for: timedelta = timedelta(seconds=30),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._executors = executors
        self._dispatcher = dispatcher
        self._recorder = recorder or OutcomeRecorder()
        self._heartbeat = heartbeat
        self._finish_within = finish_within
        self._continue_locally = continue_locally
        self._continue_for = continue_for
        self._stopping = False
        # concurrent batches (a worker's messages) start, and are recorded, in shared transactions;
        # two starts may be in flight, so a run whose slot comes while one is under way need not
        # wait for it (at a steady 500 runs/s a worker's one start lane was busy most of the time)
        self._starts: Coalescer[str, Sequence[RunId], tuple[list[Run], dict[EndpointId, JobEndpoint]]] = Coalescer(
            self._start, lanes=START_LANES
        )
        self._finishes: Coalescer[str, _Finishing, _Finished] = Coalescer(self._finish)

    def stop_continuing(self) -> None:
        """Send every run a recording makes ready through the dispatcher from now on (the worker
        is stopping: what it would start itself, another worker should)."""
        self._stopping = True

    async def execute(
        self, run_ids: Sequence[RunId], *, worker: str, not_before: Sequence[datetime | None] | None = None
    ) -> list[Run]:
        """Execute the pending runs among ``run_ids``; return them as recorded (final states), with
        those of the runs it went on to execute (see the module's docstring).

        ``not_before`` gives, per run, the slot of a run sent ahead of it (``None``: at once).
        The runs are taken at once, in one start transaction (running for this worker, started
        as of their slots); each one's handler is called when its slot comes, never before, and
        its ``started_at`` is when that happened. The message's runs are recorded together,
        once the last has run (one transaction for them all, as they started in one).
        """
        if not_before is None or all(at is None for at in not_before):
            return await self._execute_now(list(run_ids), worker)
        if len(not_before) != len(run_ids):
            raise ValueError(f"{len(run_ids)} runs but {len(not_before)} slots")
        # Take them all at once, in one start transaction: running for this worker from now on,
        # each started as of its slot, and its handler called when the slot comes by this
        # worker's clock, never before (ADR 0018).
        began = time.monotonic()
        slots = {run_id: at for run_id, at in zip(run_ids, not_before, strict=True) if at is not None}
        # earliest first (no slot: due now): of two runs of an exclusive endpoint, the one due sooner is taken
        ordered = sorted(dict.fromkeys(run_ids), key=lambda run_id: slots.get(run_id, _EPOCH))
        started, endpoints = await self._starts.submit(worker, ordered)
        groups = [asyncio.ensure_future(self._go(started, endpoints, worker, began, slots=slots))]
        # A run not taken whose slot is still to come: its exclusive endpoint is busy (or it is
        # no longer pending). Try again at its slot, as a run due then would be.
        taken = {run.id for run in started}
        now = self._clock.now()
        later: dict[datetime, list[RunId]] = {}
        for run_id in ordered:
            if run_id not in taken and run_id in slots and slots[run_id] > now:
                later.setdefault(slots[run_id], []).append(run_id)
        groups.extend(asyncio.ensure_future(self._at_slot(slot, ids, worker)) for slot, ids in later.items())
        finished = await asyncio.gather(*groups, return_exceptions=True)
        for result in finished:
            if isinstance(result, BaseException):
                raise result
        return [run for result in finished for run in result]

    async def _execute_now(self, run_ids: list[RunId], worker: str) -> list[Run]:
        began = time.monotonic()
        started, endpoints = await self._starts.submit(worker, run_ids)
        return await self._go(started, endpoints, worker, began)

    async def _go(
        self, started: list[Run], endpoints: dict[EndpointId, JobEndpoint], worker: str, began: float, *,
        slots: dict[RunId, datetime] | None = None,
    ) -> list[Run]:
        """Execute runs this worker has started (each taken ahead of its slot, in ``slots``, when
        the slot comes) and record them together; then go on with the runs the recording made
        ready, while it may."""
        recorded: list[Run] = []
        while started:
            results = await self._run_all(started, endpoints, slots or {})
            slots = None
            room = len(started) if self._may_continue(began) else 0
            finished = await self._finishes.submit(worker, _Finishing(started, results, endpoints, room))
            recorded.extend(finished.final)
            carried = finished.carried
            if not carried:
                break
            try:
                started, endpoints = await self._starts.submit(worker, [item.run_id for item in carried])
            except InfrastructureError:
                # the runs this worker meant to start: another worker may, once the database is back
                await self._dispatcher.dispatch(carried)
                log.warning("could not start %d runs made ready here; sent them to the broker", len(carried))
                break
        return recorded

    async def _at_slot(self, slot: datetime, run_ids: list[RunId], worker: str) -> list[Run]:
        await self._until(slot)
        return await self._execute_now(run_ids, worker)

    async def _until(self, slot: datetime) -> None:
        """Sleep until ``slot`` by this worker's clock (the event loop's timers may wake a little
        early, so the clock is looked at again)."""
        while (left := (slot - self._clock.now()).total_seconds()) > 0:
            await asyncio.sleep(max(left, _WAKE_AGAIN_S))

    def _may_continue(self, began: float) -> bool:
        return (
            self._continue_locally and not self._stopping
            and time.monotonic() - began < self._continue_for.total_seconds()
        )

    async def _start(
        self, worker: str, batches: list[Sequence[RunId]]
    ) -> list[tuple[list[Run], dict[EndpointId, JobEndpoint]]]:
        """Move the pending runs of ``batches`` to running in one transaction; each batch gets its
        own runs (a run named by two batches, as by a duplicated message, goes to the first)."""
        now = self._clock.now()
        async with self._uow() as uow:
            started = await uow.runs.start([run_id for batch in batches for run_id in batch], at=now, worker=worker)
            endpoints = await uow.endpoints.get_many(endpoint_ids(started)) if started else {}
            await uow.commit()
        unclaimed = {run.id: run for run in started}
        shares: list[tuple[list[Run], dict[EndpointId, JobEndpoint]]] = []
        for batch in batches:
            mine = [unclaimed.pop(run_id) for run_id in dict.fromkeys(batch) if run_id in unclaimed]
            shares.append((mine, {e: endpoints[e] for e in endpoint_ids(mine) if e in endpoints}))
        return shares

    async def _run_all(
        self, runs: Sequence[Run], endpoints: dict, slots: dict[RunId, datetime]
    ) -> dict[RunId, _Result | None]:
        tasks = {
            run.id: asyncio.ensure_future(self._one(run, _executable(run, endpoints), slots.get(run.id))) for run in runs
        }
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

    async def _one(self, run: Run, endpoint: Executable | None, slot: datetime | None = None) -> _Result:
        logs: list[tuple[datetime, LogLevel, str]] = []
        began_at = None
        if slot is not None:  # taken ahead of its slot: its handler is called when the slot comes
            await self._until(slot)
            began_at = self._clock.now()

        def log(level: LogLevel, message: str) -> None:
            if len(logs) < LOG_LINES_PER_RUN:
                logs.append((self._clock.now(), LogLevel(level), message))

        if endpoint is None:
            return _Result(
                Outcome.failed("the run's endpoint no longer exists", retryable=False), (), self._clock.now(), began_at
            )
        timeout = endpoint.timeout.total_seconds()
        try:
            executor = self._executors.for_kind(endpoint.target.kind)
            async with asyncio.timeout(timeout):  # no task of its own, as wait_for would create
                outcome = await executor.execute(endpoint, dict(run.params), log=log)
        except TimeoutError:
            outcome = Outcome(status=RunStatus.TIMED_OUT, error=f"run exceeded its timeout of {timeout:g}s")
        except Exception as exc:  # an executor bug must not lose the run
            outcome = Outcome.failed(f"executor error: {type(exc).__name__}: {exc}")
        return _Result(outcome, tuple(logs), self._clock.now(), began_at)

    async def _finish(self, worker: str, batches: list[_Finishing]) -> list[_Finished]:
        """Record the outcomes of ``batches`` in one transaction; each batch gets its final runs
        and, up to its ``room``, runs made ready to execute next; the other runs made ready are
        dispatched."""
        started = [run for batch in batches for run in batch.started]
        results = {run_id: result for batch in batches for run_id, result in batch.results.items()}
        seen = {endpoint_id: e for batch in batches for endpoint_id, e in batch.seen.items()}
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
        carried: list[list[DispatchItem]] = []
        for batch in batches:
            carried.append(follow_ups[: batch.room])
            del follow_ups[: batch.room]
        if follow_ups:
            await self._dispatcher.dispatch(follow_ups)
        await self._recorder.after_commit(settled)
        final = {run.id: run for run in settled.final}
        return [
            _Finished([final[run.id] for run in batch.started if run.id in final], mine)
            for batch, mine in zip(batches, carried, strict=True)
        ]

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
                if result.began_at is not None:
                    run = run.began(at=result.began_at)
                finished.append(Finished(_apply(run, result.outcome, result.finished_at), result.outcome.retryable))
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
