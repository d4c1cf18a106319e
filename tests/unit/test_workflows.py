"""Workflow entities (``domain.workflows``): definitions, versions, runs and step state machines."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.errors import InvalidTransition, NotFound, ValidationFailed
from domain.planning import Plan
from domain.targets import PythonTarget
from domain.workflows import (
    EndpointRef,
    OnFailure,
    PlannerKind,
    SkipCause,
    Step,
    StepStatus,
    Trigger,
    TriggerKind,
    Workflow,
    WorkflowRun,
    WorkflowRunStatus,
    WorkflowRunStep,
    WorkflowStatus,
    can_move_step,
    pending_steps,
)
from tests.builders import T0, TENANT

SECOND = timedelta(seconds=1)
TARGET = PythonTarget(handler="billing.step")


def step(key: str, *depends_on: str, **fields: Any) -> Step:
    return Step(key=key, target=fields.pop("target", TARGET), depends_on=depends_on, **fields)


def a_workflow(*steps: Step, **fields: Any) -> Workflow:
    return Workflow.new(
        tenant_id=TENANT, slug=fields.pop("slug", "billing"), name=fields.pop("name", "Billing"),
        steps=steps or (step("only"),), now=T0, **fields,
    )


def errors_of(build) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        build()
    return [(e.path, e.message) for e in caught.value.errors]


# -- steps -------------------------------------------------------------------------


def test_a_step_targets_an_endpoint_an_http_request_or_a_python_handler():
    assert step("a", target=EndpointRef(endpoint_id="e-1")).target.kind == "endpoint"
    assert step("b").target.kind == "python"
    assert errors_of(lambda: step("c", target={"kind": "http"})) == [
        ("target", "must be an endpoint reference, an http or a python target")
    ]


@pytest.mark.parametrize("key", ["Fetch", "1st", "fetch-data", "", "a" * 64, "_x"])
def test_a_step_key_is_an_identifier_in_lowercase(key):
    assert errors_of(lambda: step(key)) == [("key", "must be 1-63 lowercase letters, digits or '_', starting with a letter")]


def test_a_step_keeps_its_condition_checked_and_parsed():
    checked = step("b", "a", when="steps.a.output.count > 0")
    assert checked.when.source == "steps.a.output.count > 0" and checked.when.steps == {"a"}
    assert errors_of(lambda: step("b", when="exec('x')")) == [
        ("when", "calling exec is not allowed; the only function is len(...)")
    ]


def test_a_step_checks_its_inputs():
    assert step("b", "a", inputs={"items": "$.steps.a.output.items", "n": 3, "raw": "$$.x"}).references() == (
        ("inputs.items", "a"),
    )
    assert errors_of(lambda: step("b", inputs={"x": "$.nope", "1x": 1, "y": {"a": {1, 2}}})) == [
        ("inputs.x", "'$.nope' must start with $.trigger or $.steps"),
        ("inputs.1x", "input names are 1-64 letters, digits or '_', not starting with a digit"),
        ("inputs.y.a", "must be JSON, not set"),
    ]


def test_a_step_resolves_literal_and_referenced_inputs():
    context = {"trigger": {"customer": "c-1"}, "steps": {"a": {"status": "succeeded", "output": {"n": 2}, "error": None}}}
    resolved = step("b", "a", inputs={"customer": "$.trigger.customer", "n": "$.steps.a.output.n", "raw": "$$.x", "k": [1]})
    assert resolved.resolve_inputs(context) == {"customer": "c-1", "n": 2, "raw": "$.x", "k": [1]}


def test_a_step_timeout_is_positive_and_at_most_a_day():
    assert errors_of(lambda: step("a", timeout=timedelta(0))) == [("timeout", "must be greater than zero")]
    assert errors_of(lambda: step("a", timeout=timedelta(hours=25))) == [("timeout", "must be at most 24 hours")]


def test_depends_on_must_be_a_list_of_keys():
    assert errors_of(lambda: Step(key="a", target=TARGET, depends_on="b")) == [("depends_on", "must be a list of step keys")]


# -- triggers ------------------------------------------------------------------------


def test_triggers_are_manual_cron_or_event():
    assert Trigger.manual().kind is TriggerKind.MANUAL
    assert Trigger.on_cron("0 2 * * *", "Europe/Berlin").cron.timezone == "Europe/Berlin"
    assert Trigger.on_event("invoices.imported").topic == "invoices.imported"


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: Trigger.on_cron("61 * * * *"), [("cron", "invalid expression '61 * * * *': Bad minute")]),
        (lambda: Trigger.on_cron("0 2 * * *", "Mars/Olympus"), [("timezone", "unknown time zone 'Mars/Olympus'")]),
        (lambda: Trigger(kind="cron"), [("cron", "is required for a cron trigger")]),
        (lambda: Trigger.on_event("has space"), [("topic", "is required for an event trigger: 1-200 letters, digits or . _ : / * -")]),
        (lambda: Trigger(kind="manual", topic="x"), [("topic", "is only for event triggers, not manual")]),
    ],
)
def test_a_bad_trigger_names_its_field(build, expected):
    assert errors_of(build) == expected


# -- workflows ----------------------------------------------------------------------------


def test_a_new_workflow_is_version_one_active_and_deterministic():
    workflow = a_workflow(step("fetch"), step("parse", "fetch"))
    assert (workflow.version, workflow.status, workflow.planner) == (1, WorkflowStatus.ACTIVE, PlannerKind.DETERMINISTIC)
    assert workflow.keys == ("fetch", "parse")
    assert workflow.step("parse").depends_on == ("fetch",)
    with pytest.raises(NotFound):
        workflow.step("ghost")


def test_a_workflow_refuses_a_broken_graph_with_every_path():
    assert errors_of(
        lambda: a_workflow(step("a", "c"), step("b", "a"), step("c", "b"), step("a"), step("d", "zz"))
    ) == [
        ("steps[3].key", "duplicate key 'a' (also steps[0])"),
        ("steps[4].depends_on[0]", "unknown step 'zz'"),
        ("steps[0].depends_on", "forms a cycle: a -> c -> b -> a (each depends on the next)"),
    ]


def test_a_workflow_refuses_conditions_and_inputs_reading_a_step_not_upstream():
    assert errors_of(
        lambda: a_workflow(step("a"), step("b"), step("c", "a", when="steps.b.status == 'succeeded'", inputs={"x": "$.steps.b.output"}))
    ) == [
        ("steps[2].when", "reads step 'b', which is not upstream of 'c'; add it to depends_on (directly or through another step)"),
        ("steps[2].inputs.x", "reads step 'b', which is not upstream of 'c'; add it to depends_on (directly or through another step)"),
    ]


def test_a_workflow_needs_a_step_and_distinct_triggers():
    with pytest.raises(ValidationFailed, match="steps: must have at least one step"):
        Workflow.new(tenant_id=TENANT, slug="w", name="W", steps=(), now=T0)
    assert errors_of(lambda: a_workflow(triggers=(Trigger.manual(), Trigger.manual()))) == [
        ("triggers[1]", "repeats triggers[0]")
    ]


def test_a_revision_is_the_next_version_and_an_archived_workflow_is_read_only():
    workflow = a_workflow(step("a"))
    revised = workflow.revised(now=T0 + SECOND, steps=(step("a"), step("b", "a")), planner="ai")
    assert (revised.version, revised.planner, revised.keys, revised.updated_at) == (2, PlannerKind.AI, ("a", "b"), T0 + SECOND)
    assert revised.id == workflow.id and revised.created_at == workflow.created_at
    with pytest.raises(ValidationFailed):
        workflow.revised(now=T0, steps=(step("a", "a"),))
    with pytest.raises(TypeError, match="cannot change id"):
        workflow.revised(now=T0, id="other")
    archived = workflow.archive(now=T0 + SECOND)
    assert archived.archive(now=T0 + 2 * SECOND) is archived
    with pytest.raises(InvalidTransition):
        archived.revised(now=T0, name="x")
    with pytest.raises(InvalidTransition):
        WorkflowRun.new(workflow=archived, now=T0)


def test_a_deterministic_workflow_runs_on_its_dependencies_and_an_ai_one_on_its_plan():
    steps = (step("a"), step("b"), step("c", "a"))
    plan = Plan(stages=[["b"], ["a"], ["c"]])
    assert a_workflow(*steps).predecessors(plan) == {"a": set(), "b": set(), "c": {"a"}}
    assert a_workflow(*steps, planner="ai").predecessors(plan) == {"a": {"b"}, "b": set(), "c": {"a"}}
    assert a_workflow(*steps, planner="ai").predecessors(None) == {"a": set(), "b": set(), "c": {"a"}}


# -- runs ----------------------------------------------------------------------------


def test_a_run_moves_pending_running_then_one_final_state():
    workflow = a_workflow()
    run = WorkflowRun.new(workflow=workflow, now=T0, input={"customer": "c-1"}, trigger=TriggerKind.EVENT)
    assert (run.status, run.workflow_version, run.trigger, run.plan) == (WorkflowRunStatus.PENDING, 1, TriggerKind.EVENT, None)
    plan = Plan(stages=[["only"]])
    running = run.start(at=T0, plan=plan)
    assert running.plan == plan and running.started_at == T0
    assert running.succeed(at=T0 + SECOND).status is WorkflowRunStatus.SUCCEEDED
    failed = running.fail(at=T0 + SECOND, error="step 'only' failed: boom")
    assert failed.status.final and failed.error == "step 'only' failed: boom"
    assert run.cancel(at=T0).status is WorkflowRunStatus.CANCELED
    for final in (failed, running.cancel(at=T0)):
        with pytest.raises(InvalidTransition):
            final.start(at=T0, plan=plan)
        with pytest.raises(InvalidTransition):
            final.succeed(at=T0)
    with pytest.raises(InvalidTransition):
        run.succeed(at=T0)


def test_a_run_input_is_a_json_object():
    with pytest.raises(ValidationFailed, match="input: must be an object"):
        WorkflowRun.new(workflow=a_workflow(), now=T0, input=[1])  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match=r"input\.when: must be JSON, not datetime"):
        WorkflowRun.new(workflow=a_workflow(), now=T0, input={"when": T0})


def test_pending_steps_hold_one_pending_state_per_step_in_declared_order():
    workflow = a_workflow(step("b"), step("a", "b"))
    run = WorkflowRun.new(workflow=workflow, now=T0)
    states = pending_steps(workflow, run)
    assert [(s.step_key, s.status, s.remaining, s.attempt, s.workflow_run_id) for s in states] == [
        ("b", StepStatus.PENDING, 0, 1, run.id), ("a", StepStatus.PENDING, 0, 1, run.id),
    ]


S = StepStatus
LEGAL = {
    (S.PENDING, S.WAITING), (S.PENDING, S.READY), (S.PENDING, S.SKIPPED), (S.PENDING, S.FAILED), (S.PENDING, S.CANCELED),
    (S.WAITING, S.READY), (S.WAITING, S.SKIPPED), (S.WAITING, S.FAILED), (S.WAITING, S.CANCELED),
    (S.READY, S.RUNNING), (S.READY, S.CANCELED),
    (S.RUNNING, S.SUCCEEDED), (S.RUNNING, S.FAILED), (S.RUNNING, S.READY), (S.RUNNING, S.CANCELED),
}


@pytest.mark.parametrize("current", list(StepStatus))
@pytest.mark.parametrize("target", list(StepStatus))
def test_the_step_state_machine_allows_exactly_the_legal_moves(current, target):
    assert can_move_step(current, target) is ((current, target) in LEGAL)
    assert current.final is (current in {S.SUCCEEDED, S.FAILED, S.SKIPPED, S.CANCELED})


def a_step_state(**fields: Any) -> WorkflowRunStep:
    return WorkflowRunStep(tenant_id=TENANT, workflow_run_id="r-1", step_key="a", **fields)


def test_a_step_waits_counts_off_its_predecessors_runs_and_retries():
    state = a_step_state().wait(remaining=2)
    assert (state.status, state.remaining) == (S.WAITING, 2)
    with pytest.raises(InvalidTransition, match="2 predecessors have not finished"):
        state.make_ready(input={})
    state = state.predecessor_finished().predecessor_finished()
    with pytest.raises(InvalidTransition):
        state.predecessor_finished()
    ready = state.make_ready(input={"n": 1})
    running = ready.start(at=T0, job_run_id="job-1")
    assert (running.status, running.job_run_id, running.started_at, running.input) == (S.RUNNING, "job-1", T0, {"n": 1})
    again = running.retry(at=T0 + SECOND, error="boom", not_before=T0 + 3 * SECOND)
    assert (again.status, again.attempt, again.job_run_id, again.error, again.not_before) == (
        S.READY, 2, None, "boom", T0 + 3 * SECOND,
    )
    second = again.start(at=T0 + 4 * SECOND, job_run_id="job-2")
    assert second.started_at == T0  # when the step began, not the attempt
    done = second.succeed(at=T0 + 5 * SECOND, output={"ok": True})
    assert (done.status, done.output, done.error, done.finished_at) == (S.SUCCEEDED, {"ok": True}, None, T0 + 5 * SECOND)
    with pytest.raises(InvalidTransition):
        done.cancel(at=T0, reason="late")
    with pytest.raises(InvalidTransition, match="nothing to wait for"):
        a_step_state().wait(remaining=0)


def test_a_skipped_step_records_why():
    skipped = a_step_state().skip(at=T0, cause=SkipCause.CONDITION, reason="condition is false: trigger.x")
    assert (skipped.status, skipped.skip_cause, skipped.error) == (S.SKIPPED, SkipCause.CONDITION, "condition is false: trigger.x")


def test_on_failure_values():
    assert [str(v) for v in OnFailure] == ["halt", "skip", "continue"]
