"""The WorkflowRunRepository and WorkflowStepRepository contracts, run against every storage adapter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from attrs import evolve

from domain.errors import AlreadyExists, NotFound
from domain.ids import new_id
from domain.pagination import PageRequest
from domain.workflows import StepStatus, WorkflowRunId, WorkflowRunStatus, pending_steps
from tests.builders import OTHER_TENANT, T0, TENANT
from tests.contract.support import assert_utc_aware, every_page, ids
from tests.workflows.builders import a_finished_step, a_fully_loaded_workflow, a_started_run, a_workflow, a_workflow_run

SECOND = timedelta(seconds=1)


@pytest.fixture
async def workflow(store):
    workflow = a_fully_loaded_workflow()
    async with store.unit_of_work() as uow:
        await uow.workflows.add(workflow)
        await uow.commit()
    return workflow


async def stored_runs(store, *runs, steps=()):
    async with store.unit_of_work() as uow:
        for run in runs:
            await uow.workflow_runs.add(run)
        if steps:
            await uow.workflow_steps.add_many(list(steps))
        await uow.commit()


async def read_run(store, run_id, tenant_id=TENANT):
    async with store.unit_of_work() as uow:
        return await uow.workflow_runs.get(run_id, tenant_id=tenant_id)


async def read_steps(store, run_id):
    async with store.unit_of_work() as uow:
        return list(await uow.workflow_steps.list_for_run(run_id))


# -- runs ---------------------------------------------------------------------------------


async def test_a_started_run_reads_back_with_its_plan_and_input(store, workflow):
    run = a_started_run(workflow, input={"customer_id": "c-7", "nested": {"list": [1, None, "ü"]}})
    await stored_runs(store, run)

    found = await read_run(store, run.id)

    assert found == run
    assert found.plan.fallback_reason == "the openai planner failed: Timeout"
    assert_utc_aware(found)


async def test_a_pending_run_without_a_plan_and_a_finished_one_read_back_exactly(store, workflow):
    pending = a_workflow_run(workflow, input={})
    failed = a_started_run(workflow).fail(at=T0 + 5 * SECOND, error="step 'fetch' failed: boom")
    await stored_runs(store, pending, failed)

    assert await read_run(store, pending.id) == pending
    assert await read_run(store, failed.id) == failed


async def test_a_run_is_another_tenants_not_found_and_an_unknown_one_neither(store, workflow):
    run = a_started_run(workflow)
    await stored_runs(store, run)
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.workflow_runs.get(run.id, tenant_id=OTHER_TENANT)
        with pytest.raises(NotFound):
            await uow.workflow_runs.get(WorkflowRunId(new_id()), tenant_id=TENANT)
        assert await uow.workflow_runs.get(run.id, tenant_id=None, for_update=True) == run


async def test_a_run_of_an_unknown_workflow_is_refused_and_a_taken_id_too(store, workflow):
    run = a_started_run(workflow)
    await stored_runs(store, run)
    with pytest.raises(NotFound):
        await stored_runs(store, a_workflow_run(a_workflow()))
    with pytest.raises(AlreadyExists):
        await stored_runs(store, run)


async def test_an_updated_run_reads_back_and_a_missing_one_is_not_found(store, workflow):
    run = a_started_run(workflow)
    await stored_runs(store, run)
    done = run.succeed(at=T0 + 9 * SECOND)

    async with store.unit_of_work() as uow:
        await uow.workflow_runs.update(done)
        with pytest.raises(NotFound):
            await uow.workflow_runs.update(a_started_run(workflow))
        await uow.commit()

    assert await read_run(store, run.id) == done


async def test_get_many_returns_the_runs_that_exist_in_the_order_asked(store, workflow):
    one, two = a_started_run(workflow), a_started_run(workflow)
    await stored_runs(store, one, two)
    async with store.unit_of_work() as uow:
        found = await uow.workflow_runs.get_many([two.id, WorkflowRunId(new_id()), one.id], for_update=True)
    assert list(found) == [two.id, one.id]
    assert found[one.id] == one


@pytest.mark.parametrize(("count", "limit"), [(5, 2), (3, 3)])
async def test_a_workflows_runs_are_listed_newest_first_in_pages(store, workflow, count, limit):
    runs = [a_workflow_run(workflow, created_at=T0 + (i // 2) * SECOND) for i in range(count)]
    other = a_workflow()
    async with store.unit_of_work() as uow:
        await uow.workflows.add(other)
        await uow.commit()
    await stored_runs(store, *runs, a_workflow_run(other))

    async def fetch(page: PageRequest):
        async with store.unit_of_work() as uow:
            return await uow.workflow_runs.list(TENANT, workflow.id, page)

    pages = await every_page(fetch, limit=limit)
    assert [r.id for page in pages for r in page.items] == ids(sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True))
    async with store.unit_of_work() as uow:
        assert (await uow.workflow_runs.list(OTHER_TENANT, workflow.id, PageRequest())).items == []


# -- steps -----------------------------------------------------------------------------------


async def test_a_runs_steps_read_back_by_key_with_every_field(store, workflow):
    run = a_started_run(workflow)
    pending = pending_steps(workflow, run)
    loaded = a_finished_step(run, "fetch")
    await stored_runs(store, run, steps=[loaded, *pending[1:]])

    found = await read_steps(store, run.id)

    assert found == sorted([loaded, *pending[1:]], key=lambda s: s.step_key)
    assert found[[s.step_key for s in found].index("fetch")] == loaded
    assert_utc_aware(loaded)
    assert await read_steps(store, WorkflowRunId(new_id())) == []


async def test_a_runs_steps_read_by_key_are_those_keys_it_has_and_no_others(store, workflow):
    run, other = a_started_run(workflow), a_started_run(workflow)
    fetch, bill, notify = pending_steps(workflow, run)
    await stored_runs(store, run, other, steps=[fetch, bill, notify, *pending_steps(workflow, other)])

    async with store.unit_of_work() as uow:
        found = await uow.workflow_steps.list_for_run(run.id, keys=["notify", "fetch", "ghost", "fetch"])
        none = await uow.workflow_steps.list_for_run(run.id, keys=[])
        unknown_run = await uow.workflow_steps.list_for_run(WorkflowRunId(new_id()), keys=["fetch"])

    assert list(found) == [fetch, notify]
    assert list(none) == [] and list(unknown_run) == []


async def test_updated_steps_read_back_and_the_others_stay(store, workflow):
    run = a_started_run(workflow)
    fetch, bill, notify = pending_steps(workflow, run)
    await stored_runs(store, run, steps=[fetch, bill, notify])
    running = fetch.make_ready(input={"a": 1}).start(at=T0, job_run_id="job-1")
    waiting = bill.wait(remaining=1)

    async with store.unit_of_work() as uow:
        await uow.workflow_steps.update_many([running, waiting])
        await uow.commit()

    assert await read_steps(store, run.id) == sorted([running, waiting, notify], key=lambda s: s.step_key)
    async with store.unit_of_work() as uow:
        assert [s.status for s in await uow.workflow_steps.list_for_run(run.id, for_update=True)] == [
            StepStatus.WAITING, StepStatus.RUNNING, StepStatus.PENDING,
        ]


async def test_steps_are_stored_once_and_only_for_a_stored_run(store, workflow):
    run = a_started_run(workflow)
    steps = pending_steps(workflow, run)
    await stored_runs(store, run, steps=steps)

    with pytest.raises(AlreadyExists):
        async with store.unit_of_work() as uow:
            await uow.workflow_steps.add_many([steps[0]])
    with pytest.raises(NotFound):
        async with store.unit_of_work() as uow:
            await uow.workflow_steps.add_many(pending_steps(workflow, a_started_run(workflow)))
    with pytest.raises(NotFound):
        async with store.unit_of_work() as uow:
            await uow.workflow_steps.update_many([evolve(steps[0], step_key="ghost")])
    assert await read_steps(store, run.id) == sorted(steps, key=lambda s: s.step_key)


async def test_steps_read_or_stored_in_a_unit_of_work_update_and_rolled_back_ones_are_not_found(store, workflow):
    run = a_started_run(workflow)
    await stored_runs(store, run)
    fetch, bill, notify = pending_steps(workflow, run)
    async with store.unit_of_work() as uow:
        await uow.workflow_steps.add_many([fetch, bill])
        await uow.workflow_steps.update_many([bill.wait(remaining=1)])
        await uow.commit()
        [read] = await uow.workflow_steps.list_for_run(run.id, keys=["fetch"])
        await uow.workflow_steps.update_many([read.wait(remaining=2)])
        await uow.workflow_steps.add_many([notify])
        await uow.rollback()

        with pytest.raises(NotFound):
            await uow.workflow_steps.update_many([notify.wait(remaining=1)])
        with pytest.raises(NotFound):
            await uow.workflow_steps.update_many([evolve(read, tenant_id=OTHER_TENANT)])

    assert [(s.step_key, s.remaining) for s in await read_steps(store, run.id)] == [("bill", 1), ("fetch", 0)]


async def test_a_rolled_back_run_leaves_neither_run_nor_steps(store, workflow):
    run = a_started_run(workflow)
    async with store.unit_of_work() as uow:
        await uow.workflow_runs.add(run)
        await uow.workflow_steps.add_many(pending_steps(workflow, run))
    assert await read_steps(store, run.id) == []
    with pytest.raises(NotFound):
        await read_run(store, run.id)
    assert run.status is WorkflowRunStatus.RUNNING
