"""Use cases that race for one run on every store: whichever wins, the run ends one way only.

Each test holds one use case between its read of the run and its write (a
:class:`Pause`), lets the other use case run meanwhile, then releases the
first. A store that serialises the two (memory, SQLite) or locks the run it
read gives one consistent ending; a lost update gives two.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from domain.errors import InvalidTransition
from domain.runs import RunSource, RunStatus
from services.runs import RunsService
from tests.builders import TENANT
from tests.engine.fakes import WAIT_S, Block
from tests.engine.harness import Engine, Pause

CHANCE_S = 0.2
"""How long the other use case gets to run while the first is held (it may be blocked by the first's lock)."""

SLOW_BEATS = timedelta(seconds=30)
"""A heartbeat interval no test reaches, so only the use cases under test touch the run."""


async def a_run_inside_its_executor(engine: Engine, **worker_options: object) -> tuple[str, asyncio.Event, asyncio.Task]:
    """A fired run whose worker (heartbeat every 30 s) is blocked in the executor on the returned gate."""
    await engine.endpoint(retry={"max_attempts": 3, "backoff_s": 1})
    gate = engine.executor.gate()
    engine.executor.script(Block(gate))
    [run_id] = await engine.fire(60)
    worker = engine.execution_service(heartbeat=SLOW_BEATS, **worker_options)
    task = engine.background(worker.execute([run_id], worker="worker-1"))
    await engine.executor.wait_started()
    return run_id, gate, task


async def test_a_cancel_that_read_a_running_run_does_not_overwrite_its_success(engine: Engine) -> None:
    run_id, gate, worker = await a_run_inside_its_executor(engine)
    held = Pause(engine.store, "get")
    cancel = engine.background(RunsService(uow=held, clock=engine.clock).cancel(TENANT, run_id))
    await asyncio.wait_for(held.reached.wait(), WAIT_S)  # the operator has read the run as running

    gate.set()
    await asyncio.wait({worker}, timeout=CHANCE_S)
    held.release.set()
    await asyncio.wait({worker, cancel}, timeout=WAIT_S)

    stored = await engine.run(run_id)
    if cancel.exception() is None:
        assert worker.result() == [], "the run was recorded as succeeded and then canceled"
        assert stored.status is RunStatus.CANCELED
    else:
        assert isinstance(cancel.exception(), InvalidTransition)
        assert stored.status is RunStatus.SUCCEEDED


async def test_a_worker_that_read_its_run_as_running_does_not_overwrite_a_cancel(engine: Engine) -> None:
    held = Pause(engine.store, "get_many")
    run_id, gate, worker = await a_run_inside_its_executor(engine, uow=held)

    gate.set()
    await asyncio.wait_for(held.reached.wait(), WAIT_S)  # the worker has read the run as running
    cancel = engine.background(engine.runs.cancel(TENANT, run_id))
    await asyncio.wait({cancel}, timeout=CHANCE_S)
    held.release.set()
    await asyncio.wait({worker, cancel}, timeout=WAIT_S)

    stored = await engine.run(run_id)
    if cancel.exception() is None:
        assert worker.result() == [], "the run was canceled and then recorded as succeeded"
        assert stored.status is RunStatus.CANCELED
    else:
        assert isinstance(cancel.exception(), InvalidTransition)
        assert stored.status is RunStatus.SUCCEEDED


async def test_a_reconciler_that_read_a_run_as_stale_does_not_expire_and_retry_its_success(engine: Engine) -> None:
    run_id, gate, worker = await a_run_inside_its_executor(engine)
    held = Pause(engine.store, "stale_running")
    reconciler = engine.scheduler_for("scheduler-b", uow=held)
    engine.at(600)
    reconcile = engine.background(
        reconciler.reconcile(heartbeat_timeout=timedelta(seconds=60), recorder=engine.recorder)
    )
    await asyncio.wait_for(held.reached.wait(), WAIT_S)  # the reconciler has read the run as stale

    gate.set()
    await asyncio.wait({worker}, timeout=CHANCE_S)
    held.release.set()
    await asyncio.wait({worker, reconcile}, timeout=WAIT_S)

    stored = await engine.run(run_id)
    retries = await engine.runs_of(await engine.endpoints.get(TENANT, stored.endpoint_id), source=RunSource.RETRY)
    if reconcile.result().expired:
        assert worker.result() == [], "the run was recorded as succeeded and then expired"
        assert stored.status is RunStatus.EXPIRED
        assert len(retries) == 1
    else:
        assert stored.status is RunStatus.SUCCEEDED
        assert retries == []
