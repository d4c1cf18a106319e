"""The long-running parts: the scheduler loop and the worker, for ``serve``, ``scheduler`` and ``worker``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import dramatiq
from dramatiq.asyncio import get_event_loop_thread

from api.bootstrap import Container, bootstrap, process_identity
from api.settings import Settings
from services.execution import ExecutionService

log = logging.getLogger("ostinato")

RECONCILE_EVERY_S = 5.0
WARM_UP_TIMEOUT_S = 10.0
ERROR_BACKOFF_MAX_S = 10.0


class SchedulerLoop:
    """Ticks the scheduler until ``stop`` is set; sleeps until the next due time (bounded), and
    wakes early when ``wake`` is set. Survives database and broker outages: it logs, backs
    off and carries on, and the next successful tick catches up."""

    def __init__(self, container: Container, *, owner: str | None = None, wake: asyncio.Event | None = None) -> None:
        self._container = container
        self._service = container.scheduler(owner)
        self._triggers = container.triggers(owner)
        self._wake = wake or asyncio.Event()
        self._recorder = container.recorder
        self._heartbeat_timeout = timedelta(seconds=container.settings.heartbeat_timeout_s)
        self._max_sleep_s = container.settings.scheduler_max_sleep_s
        # often enough that a dead worker's run is expired soon after its heartbeats stop
        self._reconcile_every_s = min(RECONCILE_EVERY_S, container.settings.heartbeat_timeout_s / 2)
        self.ticks = 0

    @property
    def wake(self) -> asyncio.Event:
        return self._wake

    async def run(self, stop: asyncio.Event) -> None:
        listener = None
        if self._container.wakeups is not None:
            listener = asyncio.create_task(self._container.wakeups.run(self._wake, stop), name="wakeups")
        try:
            await self._loop(stop)
        finally:
            if listener is not None:
                await listener

    async def _loop(self, stop: asyncio.Event) -> None:
        failures = 0
        last_reconcile = 0.0
        # workflow cron triggers are looked at when one is due, and at least every max sleep
        # (a trigger defined meanwhile); not on every tick of a busy endpoint schedule
        cron_next_at: datetime | None = None
        cron_checked = -float("inf")
        while not stop.is_set():
            try:
                report = await self._service.tick()
                now = self._container.clock.now()
                if (
                    time.monotonic() - cron_checked >= self._max_sleep_s
                    or (cron_next_at is not None and cron_next_at <= now)
                ):
                    cron_next_at = (await self._triggers.tick()).next_at
                    cron_checked = time.monotonic()
                self.ticks += 1
                if time.monotonic() - last_reconcile >= self._reconcile_every_s:
                    last_reconcile = time.monotonic()
                    result = await self._service.reconcile(heartbeat_timeout=self._heartbeat_timeout, recorder=self._recorder)
                    if result.expired:
                        log.warning("reconciler expired %d runs whose worker died (%d retried)", result.expired, result.retried)
                sleep = report.sleep_s
                if cron_next_at is not None:  # a workflow's cron slot may come before the next endpoint
                    sleep = min(sleep, max(0.0, (cron_next_at - self._container.clock.now()).total_seconds()))
                if failures:
                    log.info("scheduler recovered after %d failed ticks", failures)
                failures = 0
            except Exception as exc:  # database or broker away: keep going
                failures += 1
                sleep = min(ERROR_BACKOFF_MAX_S, 0.2 * 2 ** min(failures, 6))
                log.warning("scheduler tick failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, sleep)
            if sleep > 0:
                await _wait_any(stop, self._wake, sleep)
                self._wake.clear()


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class _CloseOnShutdown(dramatiq.Middleware):
    """Closes the worker's container on the worker's event loop before that loop stops."""

    def __init__(self, binding: WorkerBinding) -> None:
        self._binding = binding

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._binding.stopping()
        loop_thread = get_event_loop_thread()
        if loop_thread is not None and self._binding.container is not None:
            loop_thread.run_coroutine(self._binding.container.close())
            self._binding.container = None


class WorkerBinding:
    """Executes the run batches a transport delivers, through a container built on first use
    on the worker's own event loop (connections belong to the loop that opened them)."""

    def __init__(self, make_container: Callable[[], Container], *, identity: str | None = None) -> None:
        self._make_container = make_container
        self.identity = identity or process_identity("worker")
        self.container: Container | None = None
        self._service: ExecutionService | None = None
        self.executed = 0

    async def __call__(self, run_ids: Sequence[str], not_before: Sequence[str | None] | None = None) -> None:
        service = self._ready()
        slots = None if not_before is None else [None if at is None else datetime.fromisoformat(at) for at in not_before]
        finished = await service.execute(list(run_ids), worker=self.identity, not_before=slots)
        self.executed += len(finished)

    def stopping(self) -> None:
        """The worker is stopping: the runs its recordings make ready go to the broker, for another
        worker, instead of being started here."""
        if self._service is not None:
            self._service.stop_continuing()

    async def warm_up(self) -> None:
        """Build the container and open a database connection before the first run arrives, so
        the first runs do not wait for them."""
        self._ready()
        assert self.container is not None

        async def connect() -> None:
            assert self.container is not None
            async with self.container.uow() as uow:
                await uow.runs.next_pending_at()

        await asyncio.wait_for(connect(), WARM_UP_TIMEOUT_S)

    def _ready(self) -> ExecutionService:
        if self._service is None:
            self.container = self._make_container()
            self._service = self.container.execution()
        return self._service


def start_worker(
    settings: Settings, transport, *, threads: int | None = None, identity: str | None = None, uow=None
) -> tuple[dramatiq.Worker, WorkerBinding]:
    """Bind a worker to ``transport`` and start its threads; ``uow`` shares a store (``memory://``)
    instead of opening the worker's own connections."""
    overrides: dict = {"transport": transport}
    if uow is not None:
        overrides["uow"] = uow
    binding = WorkerBinding(lambda: bootstrap(settings, **overrides), identity=identity)
    transport.on_runs(binding)
    transport.broker.add_middleware(_CloseOnShutdown(binding))
    worker = transport.worker(threads=threads or settings.worker_threads)
    worker.start()
    loop_thread = get_event_loop_thread()
    if loop_thread is not None:
        try:
            loop_thread.run_coroutine(binding.warm_up())
        except Exception as exc:  # the database is away: the first run connects, or waits for it
            log.warning("worker warm-up failed (%s: %s); it connects on its first run", type(exc).__name__, exc)
    return worker, binding
