"""Runs that carry their own task (workflow steps with an HTTP or Python target) on every store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.errors import AlreadyExists, ValidationFailed
from domain.execution import Outcome
from domain.ids import new_id
from domain.retry import RetryPolicy
from domain.runs import Run, RunSource, RunStatus
from domain.targets import PythonTarget
from domain.tasks import Task
from tests.builders import TENANT
from tests.engine.harness import Engine


def a_task_run(engine: Engine, *, workflow_run_id: str, max_attempts: int = 1, slot: str = "step:fetch:1") -> Run:
    task = Task(
        name="billing.fetch",
        target=PythonTarget(handler="billing.fetch", params={"page": 1}),
        timeout=timedelta(seconds=5),
        retry=RetryPolicy(max_attempts=max_attempts, backoff=timedelta(seconds=2), jitter=False),
    )
    now = engine.clock.now()
    return Run.scheduled(
        tenant_id=TENANT, endpoint_id=None, job_id=None, source=RunSource.WORKFLOW, scheduled_at=now, now=now,
        slot=slot, workflow_run_id=workflow_run_id, step_key="fetch", task=task, exclusive=False,
    )


async def store_run(engine: Engine, run: Run) -> None:
    async with engine.store.unit_of_work() as uow:
        await uow.runs.add(run)
        await uow.commit()


async def test_a_task_run_is_stored_and_read_back_with_its_task(engine: Engine) -> None:
    run = a_task_run(engine, workflow_run_id=new_id())

    await store_run(engine, run)

    assert await engine.run(run.id) == run


async def test_a_run_needs_an_endpoint_or_a_task_but_not_both(engine: Engine) -> None:
    run = a_task_run(engine, workflow_run_id=new_id())

    with pytest.raises(ValidationFailed, match="task"):
        Run(**{**{a: getattr(run, a) for a in ("id", "tenant_id", "source", "slot", "scheduled_at", "created_at")},
               "endpoint_id": None, "task": None})


async def test_a_workflow_run_slot_is_taken_once(engine: Engine) -> None:
    workflow_run = new_id()
    await store_run(engine, a_task_run(engine, workflow_run_id=workflow_run))

    with pytest.raises(AlreadyExists):
        await store_run(engine, a_task_run(engine, workflow_run_id=workflow_run))
    async with engine.store.unit_of_work() as uow:
        stored = await uow.runs.add_new([a_task_run(engine, workflow_run_id=workflow_run)])
    assert stored == []


async def test_a_task_run_executes_its_own_target_with_its_params(engine: Engine) -> None:
    run = a_task_run(engine, workflow_run_id=new_id())
    await store_run(engine, run)
    engine.executor.script(Outcome.succeeded())

    [done] = await engine.execute(run.id)

    assert done.status is RunStatus.SUCCEEDED
    assert engine.executor.params == [{}]


async def test_a_failed_task_run_is_retried_by_its_own_policy_then_dead_lettered(engine: Engine) -> None:
    run = a_task_run(engine, workflow_run_id=new_id(), max_attempts=2)
    await store_run(engine, run)
    engine.executor.script(Outcome.failed("down"), Outcome.failed("still down"))

    [first] = await engine.execute(run.id)
    engine.clock.advance(timedelta(seconds=2))
    await engine.tick()
    [retry_id] = [item.run_id for item in engine.dispatcher.items if item.run_id != run.id]
    retry = await engine.run(retry_id)
    [second] = await engine.execute(retry_id)

    assert first.status is RunStatus.FAILED and not first.dead_lettered
    assert (retry.source, retry.attempt, retry.task, retry.step_key) == (RunSource.RETRY, 2, run.task, "fetch")
    assert retry.scheduled_at == run.scheduled_at + timedelta(seconds=2)
    assert second.status is RunStatus.FAILED and second.dead_lettered
