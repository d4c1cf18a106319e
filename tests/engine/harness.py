"""The engine wired to one store, a fixed clock and the fakes, as a test sees it.

Every service is the product's own; only the dispatcher and the executor are
fakes. Times are given in seconds after ``T0`` (the ``clock`` fixture's start).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any

from domain.clock import FixedClock
from domain.endpoints import JobEndpoint
from domain.ids import RunId
from domain.jobs import Job
from domain.queries import RunQuery
from domain.runs import Run
from services.endpoints import EndpointsService
from services.execution import ExecutionService
from services.jobs import JobsService
from services.outcomes import OutcomeRecorder
from services.runs import RunsService
from services.scheduler import SchedulerService, TickReport
from tests.builders import T0, TENANT
from tests.engine.fakes import WAIT_S, RecordingDispatcher, ScriptedExecutor

HEARTBEAT = timedelta(milliseconds=20)
"""How often workers beat in these tests, so a cancel is noticed within a test's patience."""

_names = itertools.count(1)


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


class Engine:
    """Services over one store; ``scheduler`` (owner ``scheduler-a``) and ``execution`` share the fakes."""

    def __init__(self, store: Any, clock: FixedClock, dispatcher: RecordingDispatcher, executor: ScriptedExecutor) -> None:
        self.store = store
        self.clock = clock
        self.dispatcher = dispatcher
        self.executor = executor
        self.recorder = OutcomeRecorder(rand=lambda: 1.0)
        self.endpoints = EndpointsService(uow=store.unit_of_work, clock=clock)
        self.jobs = JobsService(uow=store.unit_of_work, clock=clock)
        self.runs = RunsService(uow=store.unit_of_work, clock=clock, dispatcher=dispatcher)
        self.execution = self.execution_service()
        self.scheduler = self.scheduler_for("scheduler-a")
        self._tasks: list[asyncio.Task] = []

    def background(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """Run ``work`` (a worker, say) as a task that :meth:`close` waits for."""
        task = asyncio.ensure_future(work)
        self._tasks.append(task)
        return task

    async def close(self) -> None:
        """Open every executor gate and let background work end, so no task outlives its test."""
        for gate in self.executor.gates:
            gate.set()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=WAIT_S)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def scheduler_for(self, owner: str, **options: Any) -> SchedulerService:
        """A scheduler of its own (fresh: its first tick re-dispatches pending runs)."""
        options.setdefault("max_sleep", timedelta(minutes=10))
        options.setdefault("uow", self.store.unit_of_work)
        return SchedulerService(clock=self.clock, dispatcher=self.dispatcher, owner=owner, **options)

    def execution_service(self, **options: Any) -> ExecutionService:
        options.setdefault("heartbeat", HEARTBEAT)
        options.setdefault("uow", self.store.unit_of_work)
        return ExecutionService(
            clock=self.clock, executors=self.executor, dispatcher=self.dispatcher, recorder=self.recorder, **options
        )

    # -- time --------------------------------------------------------------------

    def at(self, seconds: float) -> datetime:
        """Set the clock to ``T0 + seconds``."""
        self.clock.set(at(seconds))
        return self.clock.now()

    # -- definitions ---------------------------------------------------------------

    async def endpoint(self, *, job: Job | None = None, **spec: Any) -> JobEndpoint:
        """Define an endpoint: an HTTP target every 60 s unless ``spec`` says otherwise."""
        definition: dict[str, Any] = {
            "name": f"endpoint-{next(_names)}",
            "target": {"kind": "http", "url": "https://example.com/hook"},
            "schedule": {"interval_s": 60},
        }
        definition.update(spec)
        return await self.endpoints.create(TENANT, definition, job_id=job.id if job is not None else None)

    async def job(self) -> Job:
        n = next(_names)
        return await self.jobs.create(TENANT, {"slug": f"job-{n}", "name": f"Job {n}"})

    # -- reading -------------------------------------------------------------------

    async def reread(self, endpoint: JobEndpoint) -> JobEndpoint:
        return await self.endpoints.get(TENANT, endpoint.id)

    async def run(self, run_id: RunId) -> Run:
        return await self.runs.get(TENANT, run_id)

    async def runs_of(self, endpoint: JobEndpoint, **query: Any) -> list[Run]:
        """The endpoint's runs (filtered by ``query``), oldest first."""
        page = await self.runs.list(TENANT, RunQuery(endpoint_id=endpoint.id, **query))
        return sorted(page.items, key=lambda r: (r.scheduled_at, r.attempt, r.created_at))

    # -- driving -------------------------------------------------------------------

    async def tick(self, scheduler: SchedulerService | None = None) -> TickReport:
        return await (scheduler or self.scheduler).tick()

    async def fire(self, seconds: float) -> list[RunId]:
        """Set the clock to ``T0 + seconds``, tick, and return the run ids dispatched by that tick."""
        self.at(seconds)
        self.dispatcher.take()
        await self.tick()
        return self.dispatcher.take()

    async def execute(self, *run_ids: RunId, worker: str = "worker-1") -> list[Run]:
        return await self.execution.execute(list(run_ids), worker=worker)

    async def run_now(self, endpoint: JobEndpoint, params: Mapping[str, Any] | None = None) -> Run:
        return await self.runs.run_now(TENANT, endpoint.id, params)


class Pause:
    """A unit-of-work factory that holds its first unit of work right after it calls ``runs.<method>``.

    It lets a test stop one use case between its read and its write, let another
    use case run, then release it: ``reached`` is set when the hold begins,
    ``release`` ends it. Later units of work from the factory are not held.
    """

    def __init__(self, store: Any, method: str) -> None:
        self._store = store
        self.method = method
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self.used = False

    def __call__(self, *, read_only: bool = False) -> _PausingUnitOfWork:
        return _PausingUnitOfWork(self._store.unit_of_work(read_only=read_only), self)

    async def hold(self) -> None:
        if self.used:
            return
        self.used = True
        self.reached.set()
        await self.release.wait()


class _PausingUnitOfWork:
    def __init__(self, inner: Any, pause: Pause) -> None:
        self._inner = inner
        self._pause = pause
        self.runs = _PausingRuns(inner.runs, pause)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> _PausingUnitOfWork:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._inner.__aexit__(*exc_info)


class _PausingRuns:
    def __init__(self, inner: Any, pause: Pause) -> None:
        self._inner = inner
        self._pause = pause

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if name != self._pause.method:
            return method

        async def held(*args: Any, **kwargs: Any) -> Any:
            result = await method(*args, **kwargs)
            await self._pause.hold()
            return result

        return held
