"""A worker that continues locally: the runs its recording makes ready start in the same call,
without the dispatcher, and the database still decides who runs what."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.errors import InfrastructureError
from domain.runs import RunStatus
from domain.workflows import WorkflowRunStatus
from tests.workflows.harness import Flow, step


async def test_a_chain_runs_in_the_call_that_ran_its_first_step_and_nothing_goes_through_the_dispatcher(flow: Flow):
    flow.execution = flow.execution_service(continue_locally=True)
    workflow = await flow.define(step("a"), step("b", "a"), step("c", "b"))
    run = await flow.start(workflow)
    [first] = flow.dispatcher.take()

    recorded = await flow.execute(first)

    assert [r.step_key for r in recorded] == ["a", "b", "c"]
    assert flow.executor.keys() == ["a", "b", "c"]
    assert flow.dispatcher.take() == []
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED
    jobs = await flow.job_runs(run)
    assert {(j.status, j.worker_id, j.attempt) for j in jobs} == {(RunStatus.SUCCEEDED, "worker-1", 1)}
    # stored as dispatched by the recording: a worker that dies before starting one leaves it to the reconciler
    assert all(j.dispatched_at is not None and j.started_at is not None for j in jobs)


async def test_a_batch_continues_with_as_many_ready_runs_as_it_had_and_the_others_are_dispatched(flow: Flow):
    flow.execution = flow.execution_service(continue_locally=True)
    workflow = await flow.define(step("split"), step("b1", "split"), step("b2", "split"), step("b3", "split"))
    run = await flow.start(workflow)
    [first] = flow.dispatcher.take()

    await flow.execute(first)

    assert flow.executor.keys() == ["split", "b1"]
    assert len(flow.dispatcher.run_ids) == 2
    await flow.work()
    assert sorted(flow.executor.keys()) == ["b1", "b2", "b3", "split"]
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED


async def test_a_run_started_here_and_also_delivered_by_a_message_executes_once(flow: Flow):
    flow.execution = flow.execution_service(continue_locally=True)
    workflow = await flow.define(step("a"), step("b", "a"))
    run = await flow.start(workflow)
    [first] = flow.dispatcher.take()
    await flow.execute(first)
    [b_job] = await flow.job_runs(run, "b")

    # as when the reconciler sent it again, or a second orchestrator's message arrived late
    assert await flow.execute(b_job.id, worker="worker-2") == []

    assert flow.executor.keys() == ["a", "b"]
    assert (await flow.job_run(b_job.id)).worker_id == "worker-1"


def _stopping(flow: Flow):
    execution = flow.execution_service(continue_locally=True)
    execution.stop_continuing()
    return execution


def _out_of_time(flow: Flow):
    return flow.execution_service(continue_locally=True, continue_for=timedelta(0))


def _not_continuing(flow: Flow):
    return flow.execution  # the harness's default


@pytest.mark.parametrize(
    "worker", [_not_continuing, _stopping, _out_of_time], ids=["not-continuing", "stopping", "past-its-time-budget"]
)
async def test_a_worker_that_does_not_continue_sends_every_ready_run_through_the_dispatcher(flow: Flow, worker):
    flow.execution = worker(flow)
    workflow = await flow.define(step("a"), step("b", "a"))
    await flow.start(workflow)
    [first] = flow.dispatcher.take()

    await flow.execute(first)

    assert flow.executor.keys() == ["a"]
    assert len(flow.dispatcher.take()) == 1


async def test_ready_runs_the_worker_cannot_start_are_sent_to_the_broker(flow: Flow):
    # Given a worker whose database goes away after it recorded the first step
    failing = _FailingStarts(flow.store, fail_from=2)
    flow.execution = flow.execution_service(continue_locally=True, uow=failing)
    workflow = await flow.define(step("a"), step("b", "a"))
    run = await flow.start(workflow)
    [first] = flow.dispatcher.take()

    # When it tries to start the step it made ready
    recorded = await flow.execute(first)

    # Then the step goes to the broker, for any worker, still pending
    assert [r.step_key for r in recorded] == ["a"]
    [b_job] = await flow.job_runs(run, "b")
    assert flow.dispatcher.take() == [b_job.id]
    assert b_job.status is RunStatus.PENDING
    failing.fail_from = None
    flow.execution = flow.execution_service(continue_locally=True)
    await flow.execute(b_job.id)
    assert flow.executor.keys() == ["a", "b"]
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED


class _FailingStarts:
    """A unit-of-work factory whose ``runs.start`` raises ``InfrastructureError`` from its
    ``fail_from``-th call on (the database went away)."""

    def __init__(self, store: Any, *, fail_from: int | None) -> None:
        self._store = store
        self.fail_from = fail_from
        self.starts = 0

    def __call__(self) -> Any:
        return _FailingUnitOfWork(self._store.unit_of_work(), self)


class _FailingUnitOfWork:
    def __init__(self, inner: Any, owner: _FailingStarts) -> None:
        self._inner = inner
        self.runs = _FailingRuns(inner.runs, owner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> _FailingUnitOfWork:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._inner.__aexit__(*exc_info)


class _FailingRuns:
    def __init__(self, inner: Any, owner: _FailingStarts) -> None:
        self._inner = inner
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def start(self, *args: Any, **kwargs: Any) -> Any:
        self._owner.starts += 1
        if self._owner.fail_from is not None and self._owner.starts >= self._owner.fail_from:
            raise InfrastructureError("the database is away")
        return await self._inner.start(*args, **kwargs)
