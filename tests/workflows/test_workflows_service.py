"""WorkflowsService on every store: definitions and versions, plans, runs, cancel, the event record."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from domain.errors import AlreadyExists, InvalidTransition, NotFound, ValidationFailed
from domain.planning import Plan, StepBrief
from domain.queries import WorkflowQuery
from domain.runs import RunStatus
from domain.workflows import StepStatus, TriggerKind, WorkflowRunStatus, WorkflowStatus
from services.workflows import WorkflowsService
from tests.builders import OTHER_TENANT, TENANT
from tests.engine.fakes import Block
from tests.workflows.fakes import boom, ok
from tests.workflows.harness import Flow, step

S = StepStatus


# -- definitions ------------------------------------------------------------------------


async def test_a_workflow_is_defined_read_listed_and_its_slug_is_taken(flow: Flow):
    workflow = await flow.define(step("a"), slug="billing", description="Bill.", triggers=[{"kind": "manual"}])

    assert (workflow.version, workflow.status, workflow.tenant_id) == (1, WorkflowStatus.ACTIVE, TENANT)
    assert await flow.workflows.get(TENANT, "billing") == workflow
    assert (await flow.workflows.list(TENANT)).items == [workflow]
    with pytest.raises(AlreadyExists):
        await flow.define(step("a"), slug="billing")
    with pytest.raises(NotFound):
        await flow.workflows.get(OTHER_TENANT, "billing")


async def test_a_bad_definition_is_refused_whole_with_each_path(flow: Flow):
    with pytest.raises(ValidationFailed) as refused:
        await flow.workflows.create(TENANT, {"slug": "x", "name": "X", "steps": [step("a", "ghost"), {"key": "b"}]})
    paths = {e.path for e in refused.value.errors}
    assert {"steps[0].depends_on[0]", "steps[1].target"} <= paths
    assert (await flow.workflows.list(TENANT)).items == []


async def test_an_endpoint_step_must_name_one_of_the_tenants_endpoints(flow: Flow):
    theirs = await flow.endpoints.create(
        OTHER_TENANT, {"name": "theirs", "target": {"kind": "http", "url": "https://x.example.com"}, "schedule": {"interval_s": 60}}
    )
    with pytest.raises(ValidationFailed) as refused:
        await flow.define(
            {"key": "a", "target": {"kind": "endpoint", "endpoint_id": theirs.id}},
            {"key": "b", "target": {"kind": "endpoint", "endpoint_id": "nope"}},
        )
    assert [e.path for e in refused.value.errors] == ["steps[0].target.endpoint_id", "steps[1].target.endpoint_id"]


async def test_an_update_is_the_next_version_and_a_started_run_keeps_its_own(flow: Flow):
    workflow = await flow.define(step("old_a"), step("old_b", "old_a"), slug="evolving")
    first_run = await flow.start(workflow)
    [old_job] = flow.dispatcher.take()

    revised = await flow.workflows.update(TENANT, "evolving", {"steps": [step("new_only")], "name": "Evolved"})
    await flow.execute(old_job)
    await flow.work()
    second_run = await flow.start(revised)
    await flow.work()

    assert (revised.version, revised.name, revised.id) == (2, "Evolved", workflow.id)
    assert (await flow.workflows.get(TENANT, "evolving", 1)).keys == ("old_a", "old_b")
    assert (first_run.workflow_version, second_run.workflow_version) == (1, 2)
    assert await flow.statuses(first_run) == {"old_a": "succeeded", "old_b": "succeeded"}
    assert await flow.statuses(second_run) == {"new_only": "succeeded"}
    assert flow.executor.keys() == ["old_a", "old_b", "new_only"]
    page = await flow.workflows.runs(TENANT, "evolving")
    assert [r.id for r in page.items] == [second_run.id, first_run.id]


async def test_an_update_cannot_change_the_slug(flow: Flow):
    await flow.define(step("a"), slug="fixed")
    with pytest.raises(ValidationFailed):
        await flow.workflows.update(TENANT, "fixed", {"slug": "moved"})


async def test_an_archived_workflow_is_listed_only_when_asked_and_neither_runs_nor_changes(flow: Flow):
    workflow = await flow.define(step("a"), slug="retired")

    archived = await flow.workflows.archive(TENANT, "retired")
    again = await flow.workflows.archive(TENANT, "retired")

    assert archived.status is WorkflowStatus.ARCHIVED and again == archived
    assert (await flow.workflows.list(TENANT)).items == []
    assert [w.id for w in (await flow.workflows.list(TENANT, WorkflowQuery(status=WorkflowStatus.ARCHIVED))).items] == [workflow.id]
    with pytest.raises(InvalidTransition):
        await flow.start(workflow)
    with pytest.raises(InvalidTransition):
        await flow.workflows.update(TENANT, "retired", {"name": "Back"})


# -- plans ------------------------------------------------------------------------------


class _Broken:
    name = "openai:test"

    async def plan(self, goal: str, steps: Sequence[StepBrief]) -> Plan:
        raise RuntimeError("model unreachable")


class _Reversed:
    """Runs independent steps in the reverse of their declared order, one per stage."""

    name = "openai:reversed"

    async def plan(self, goal: str, steps: Sequence[StepBrief]) -> Plan:
        return Plan(stages=[[s.key] for s in reversed(steps)], rationale="last first", planner=self.name)


async def test_an_ai_workflow_whose_planner_fails_runs_on_the_deterministic_plan_and_says_why(flow: Flow):
    flow.workflows = WorkflowsService(
        uow=flow.store.unit_of_work, clock=flow.clock, dispatcher=flow.dispatcher, planner=_Broken()
    )
    workflow = await flow.define(step("a"), step("b"), planner="ai")

    preview = await flow.workflows.preview_plan(TENANT, workflow.slug)
    run = await flow.start(workflow)

    for plan in (preview, (await flow.reread(run)).plan):
        assert plan.stages == (("a", "b"),)
        assert plan.fallback_reason == "the openai:test planner failed: RuntimeError: model unreachable"


async def test_an_ai_plan_binds_the_order_of_independent_steps(flow: Flow):
    flow.workflows = WorkflowsService(
        uow=flow.store.unit_of_work, clock=flow.clock, dispatcher=flow.dispatcher, planner=_Reversed()
    )
    workflow = await flow.define(step("a"), step("b"), step("c"), planner="ai")
    deterministic = await flow.define(step("a"), step("b"), step("c"))

    run = await flow.start(workflow)
    await flow.work(separately=True)
    other = await flow.start(deterministic)

    assert (await flow.reread(run)).plan.planner == "openai:reversed"
    assert flow.executor.keys() == ["c", "b", "a"]
    assert (await flow.reread(other)).plan.planner == "deterministic"
    assert len(flow.dispatcher.take()) == 3  # no binding order: all three at once


# -- runs ---------------------------------------------------------------------------------


async def test_a_run_is_read_with_its_steps_in_declared_order_and_only_by_its_tenant(flow: Flow):
    workflow = await flow.define(step("z"), step("a", "z"), step("m", "a"))
    run = await flow.start(workflow, {"k": "v"})

    stored = await flow.workflows.get_run(TENANT, run.id)
    steps = await flow.workflows.steps(TENANT, run.id)

    assert stored == run
    assert (run.trigger, run.input, run.status) == (TriggerKind.MANUAL, {"k": "v"}, WorkflowRunStatus.RUNNING)
    assert run.plan.stages == (("z",), ("a",), ("m",))
    assert [(s.step_key, s.status, s.remaining) for s in steps] == [("z", S.RUNNING, 0), ("a", S.WAITING, 1), ("m", S.WAITING, 1)]
    with pytest.raises(NotFound):
        await flow.workflows.get_run(OTHER_TENANT, run.id)
    with pytest.raises(NotFound):
        await flow.workflows.steps(OTHER_TENANT, run.id)


async def test_a_bad_input_or_trigger_is_refused(flow: Flow):
    workflow = await flow.define(step("a"))
    with pytest.raises(ValidationFailed):
        await flow.workflows.start(TENANT, workflow.slug, {"bad": object()})
    with pytest.raises(ValidationFailed):
        await flow.workflows.start(TENANT, workflow.slug, {}, trigger="telepathy")
    assert (await flow.workflows.runs(TENANT, workflow.slug)).items == []


async def test_canceling_a_run_cancels_its_unfinished_steps_and_their_job_runs(flow: Flow):
    workflow = await flow.define(step("done"), step("busy", "done"), step("queued", "done"), step("later", "busy"))
    run = await flow.start(workflow)
    await flow.execute(*flow.dispatcher.take())
    busy_job, queued_job = flow.dispatcher.take()
    gate = flow.executor.gate()
    flow.executor.script("busy", Block(gate))
    worker = flow.background(flow.execute(busy_job, worker="worker-2"))
    await flow.executor.wait_started(2)

    canceled = await flow.workflows.cancel_run(TENANT, run.id)

    assert canceled.status is WorkflowRunStatus.CANCELED
    assert await flow.statuses(run) == {"done": "succeeded", "busy": "canceled", "queued": "canceled", "later": "canceled"}
    assert (await flow.job_run(busy_job)).status is RunStatus.CANCELED
    assert (await flow.job_run(queued_job)).status is RunStatus.CANCELED
    await worker
    assert await flow.execute(queued_job) == []  # a late message finds it canceled
    assert flow.executor.keys() == ["done", "busy"]
    with pytest.raises(InvalidTransition):
        await flow.workflows.cancel_run(TENANT, run.id)
    with pytest.raises(NotFound):
        await flow.workflows.cancel_run(OTHER_TENANT, run.id)


# -- the event record ---------------------------------------------------------------------


async def test_a_run_records_its_start_each_step_and_its_end_as_events_in_order(flow: Flow):
    workflow = await flow.define(
        step("a"), step("b", "a", when="steps.a.output.go == true"), step("c", "a", on_failure="continue")
    )
    flow.executor.script("a", ok({"go": False}))
    flow.executor.script("c", boom("meh", retryable=False))
    run = await flow.start(workflow)
    await flow.work()

    assert await flow.topics(run) == [
        ("workflow.run.started", None),
        ("workflow.step.started", "a"),
        ("workflow.step.succeeded", "a"),
        ("workflow.step.skipped", "b"),
        ("workflow.step.started", "c"),
        ("workflow.step.failed", "c"),
        ("workflow.run.succeeded", None),
    ]
    events = await flow.events_list("workflow.")
    assert [e.seq for e in events] == list(range(1, 8))
    started, *_, ended = events
    assert started.payload == {
        "workflow_run_id": run.id, "workflow_id": workflow.id, "workflow": workflow.slug, "version": 1,
        "trigger": "manual", "status": "running",
    }
    assert (ended.payload["status"], ended.payload["error"]) == ("succeeded", None)
    skipped = next(e for e in events if e.topic == "workflow.step.skipped")
    assert (skipped.payload["skip_cause"], skipped.payload["step"]) == ("condition", "b")


async def test_a_halted_and_a_canceled_run_record_their_ends(flow: Flow):
    halting = await flow.define(step("a"), step("b", "a"))
    flow.executor.script("a", boom("no", retryable=False))
    failed = await flow.start(halting)
    await flow.work()
    canceled = await flow.start(await flow.define(step("x")))
    await flow.workflows.cancel_run(TENANT, canceled.id)

    assert [t for t, _ in await flow.topics(failed)] == [
        "workflow.run.started", "workflow.step.started", "workflow.step.failed", "workflow.step.canceled",
        "workflow.run.failed",
    ]
    assert [t for t, _ in await flow.topics(canceled)] == [
        "workflow.run.started", "workflow.step.started", "workflow.step.canceled", "workflow.run.canceled",
    ]
