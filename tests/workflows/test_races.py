"""Steps of one workflow run finishing at the same moment on different workers, on every store:
their transactions queue on the workflow run's row, so a join counts each predecessor once and
is dispatched once."""

from __future__ import annotations

import asyncio
from typing import Any

from domain.workflows import StepStatus, WorkflowRunStatus
from services.execution import ExecutionService
from services.orchestrator import Orchestrator
from services.outcomes import OutcomeRecorder
from tests.engine.fakes import WAIT_S, Block
from tests.engine.harness import HEARTBEAT
from tests.workflows.harness import Flow, step

CHANCE_S = 0.3
"""How long the second worker gets while the first holds the workflow run (it should be blocked)."""


def worker(flow: Flow, uow: Any = None):
    """An execution service as another worker process would have: its own orchestrator."""
    factory = uow or flow.store.unit_of_work
    recorder = OutcomeRecorder(rand=lambda: 1.0, listener=Orchestrator(uow=factory, clock=flow.clock))
    return ExecutionService(
        uow=factory, clock=flow.clock, executors=flow.executor, dispatcher=flow.dispatcher, recorder=recorder,
        heartbeat=HEARTBEAT,
    )


async def test_two_workers_finishing_both_branches_at_once_dispatch_the_join_once(flow: Flow):
    workflow = await flow.define(step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c"))
    run = await flow.start(workflow)
    await flow.execute(*flow.dispatcher.take())
    b_job, c_job = flow.dispatcher.take()
    gate = flow.executor.gate()
    flow.executor.script("b", Block(gate))
    flow.executor.script("c", Block(gate))
    one, two = worker(flow), worker(flow)
    both = asyncio.gather(one.execute([b_job], worker="worker-1"), two.execute([c_job], worker="worker-2"))
    await flow.executor.wait_started(3)

    gate.set()  # both finish at the same moment
    await asyncio.wait_for(both, WAIT_S)

    [d_job] = flow.dispatcher.take()
    assert [j.id for j in await flow.job_runs(run, "d")] == [d_job]
    d = (await flow.steps_of(run))["d"]
    assert (d.status, d.remaining, d.job_run_id) == (StepStatus.RUNNING, 0, d_job)
    await flow.execute(d_job)
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED
    assert flow.executor.keys().count("d") == 1


async def test_many_branches_finishing_on_many_workers_release_the_join_once(flow: Flow):
    width = 8
    workflow = await flow.define(*(step(f"b{i}") for i in range(width)), step("join", *(f"b{i}" for i in range(width))))
    run = await flow.start(workflow)
    jobs = flow.dispatcher.take()
    gate = flow.executor.gate()
    for i in range(width):
        flow.executor.script(f"b{i}", Block(gate))
    workers = [worker(flow) for _ in range(width)]
    done = asyncio.gather(*(w.execute([job], worker=f"worker-{i}") for i, (w, job) in enumerate(zip(workers, jobs))))
    await flow.executor.wait_started(width)

    gate.set()
    await asyncio.wait_for(done, WAIT_S * 2)

    assert len(flow.dispatcher.take()) == 1
    assert len(await flow.job_runs(run, "join")) == 1
    join = (await flow.steps_of(run))["join"]
    assert (join.status, join.remaining) == (StepStatus.RUNNING, 0)


class _HoldAfterLock:
    """A unit-of-work factory whose first unit of work stops right after it locks workflow runs
    (``workflow_runs.get_many(for_update=True)``) until ``release`` is set."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self.used = False

    def __call__(self, *, read_only: bool = False) -> Any:
        inner = self._store.unit_of_work(read_only=read_only)
        hold = self

        class Runs:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner.workflow_runs, name)

            async def get_many(self, ids, *, for_update=False):
                found = await inner.workflow_runs.get_many(ids, for_update=for_update)
                if for_update and not hold.used:
                    hold.used = True
                    hold.reached.set()
                    await hold.release.wait()
                return found

        class Unit:
            workflow_runs = Runs()

            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            async def __aenter__(self) -> Any:
                await inner.__aenter__()
                return self

            async def __aexit__(self, *exc: Any) -> None:
                await inner.__aexit__(*exc)

        return Unit()


async def test_a_worker_holding_the_workflow_run_makes_the_other_wait_and_the_join_counts_both(flow: Flow):
    workflow = await flow.define(step("b"), step("c"), step("d", "b", "c"))
    run = await flow.start(workflow)
    b_job, c_job = flow.dispatcher.take()
    held = _HoldAfterLock(flow.store)
    first = flow.background(worker(flow, held).execute([b_job], worker="worker-1"))
    await asyncio.wait_for(held.reached.wait(), WAIT_S)  # worker-1 holds the workflow run

    second = flow.background(worker(flow).execute([c_job], worker="worker-2"))
    await asyncio.wait({second}, timeout=CHANCE_S)
    assert not second.done(), "the second worker advanced the run while the first held it"
    held.release.set()
    await asyncio.wait_for(asyncio.gather(first, second), WAIT_S)

    assert len(flow.dispatcher.take()) == 1
    assert len(await flow.job_runs(run, "d")) == 1
    assert (await flow.steps_of(run))["d"].status is StepStatus.RUNNING
