"""The advance policy (``domain.workflows.start_run``/``advance``/``cancel_run``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidTransition
from domain.planning import Plan, deterministic_plan
from domain.retry import RetryPolicy
from domain.workflows import (
    Advance,
    MissingSteps,
    OnFailure,
    SkipCause,
    StepOutcome,
    StepStatus,
    Workflow,
    WorkflowRun,
    WorkflowRunStatus,
    advance,
    cancel_run,
    pending_steps,
    start_run,
)
from tests.builders import T0
from tests.unit.test_workflows import a_workflow, step

S = StepStatus
SECOND = timedelta(seconds=1)


class Driver:
    """Plays the orchestrator: starts a run, dispatches steps and reports outcomes."""

    def __init__(self, workflow: Workflow, *, input: dict[str, Any] | None = None, plan: Plan | None = None) -> None:
        self.workflow = workflow
        run = WorkflowRun.new(workflow=workflow, now=T0, input=input or {})
        self.clock = T0
        self.jobs = 0
        self.last = start_run(
            workflow, run, pending_steps(workflow, run), plan=plan or deterministic_plan(workflow.briefs()), at=T0
        )

    @property
    def run(self) -> WorkflowRun:
        return self.last.run

    def status(self, key: str) -> StepStatus:
        return self.last.step(key).status

    def statuses(self) -> dict[str, str]:
        return {s.step_key: str(s.status) for s in self.last.steps}

    def dispatch(self, key: str) -> None:
        self.jobs += 1
        states = [s.start(at=self.clock, job_run_id=f"job-{self.jobs}") if s.step_key == key else s for s in self.last.steps]
        self.last = Advance(run=self.run, steps=tuple(states))

    def report(self, key: str, *, ok: bool = True, output: Any = None, error: str = "boom", dispatch: bool = True) -> Advance:
        if dispatch and self.status(key) is S.READY:
            self.dispatch(key)
        self.clock += SECOND
        outcome = StepOutcome(key=key, succeeded=ok, output=output, error=None if ok else error, at=self.clock)
        whole = advance(self.workflow, self.run, self.last.steps, outcome, rand=0.0)
        assert_a_subset_advances_alike(self.workflow, self.last, outcome, whole)
        self.last = whole
        return self.last


def assert_a_subset_advances_alike(workflow: Workflow, before: Advance, outcome: StepOutcome, whole: Advance) -> None:
    """Advancing from the outcome's step and its successors, adding the states ``advance`` asks
    for, gives what advancing from every state gives."""
    graph = workflow.graph(before.run.plan)
    keys = {outcome.key, *graph.successors[outcome.key]}
    while True:
        given = [state for state in before.steps if state.step_key in keys]
        try:
            part = advance(workflow, before.run, given, outcome, rand=0.0, complete=False)
            break
        except MissingSteps as missing:
            assert not missing.keys & keys, "asked for a state it was given"
            keys |= missing.keys
    assert part.run == whole.run
    assert (part.changed, part.ready, part.cancel_runs) == (whole.changed, whole.ready, whole.cancel_runs)
    assert all(state == whole.step(state.step_key) for state in part.steps)


def test_a_chain_runs_step_by_step_and_succeeds():
    driver = Driver(a_workflow(step("a"), step("b", "a"), step("c", "b")))
    assert driver.last.ready == ("a",)
    assert [(s.step_key, s.status, s.remaining) for s in driver.last.steps] == [
        ("a", S.READY, 0), ("b", S.WAITING, 1), ("c", S.WAITING, 1),
    ]
    assert driver.report("a", output={"n": 1}).ready == ("b",)
    assert driver.report("b").ready == ("c",)
    assert driver.run.status is WorkflowRunStatus.RUNNING
    done = driver.report("c")
    assert done.run.status is WorkflowRunStatus.SUCCEEDED and done.run.finished_at == driver.clock
    assert driver.last.step("a").output == {"n": 1}


def test_fan_out_then_a_join_waits_for_every_predecessor():
    driver = Driver(a_workflow(step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c")))
    assert driver.report("a").ready == ("b", "c")
    assert driver.last.step("d").remaining == 2
    after_b = driver.report("b")
    assert after_b.ready == () and after_b.step("d").remaining == 1 and after_b.step("d").status is S.WAITING
    assert driver.report("c").ready == ("d",)
    driver.report("d")
    assert driver.run.status is WorkflowRunStatus.SUCCEEDED


def test_halt_fails_the_run_and_cancels_every_unfinished_step_running_ones_too():
    driver = Driver(a_workflow(step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c"), step("e")))
    driver.report("a")
    driver.dispatch("c")
    job_of_c = driver.last.step("c").job_run_id
    halted = driver.report("b", ok=False, error="HTTP 500")
    assert halted.run.status is WorkflowRunStatus.FAILED
    assert halted.run.error == "step 'b' failed: HTTP 500"
    assert driver.statuses() == {"a": "succeeded", "b": "failed", "c": "canceled", "d": "canceled", "e": "canceled"}
    assert halted.cancel_runs == (job_of_c,)
    assert halted.step("d").error == "the run halted: step 'b' failed"
    late = driver.report("c", dispatch=False)  # the canceled job's outcome arrives anyway
    assert late.changed == () and late.run == halted.run


def test_skip_skips_every_step_downstream_transitively_and_the_run_still_succeeds():
    driver = Driver(a_workflow(
        step("a"), step("b", "a", on_failure="skip"), step("c", "a"), step("d", "b", "c"), step("e", "d"), step("f", "c"),
    ))
    driver.report("a")
    driver.report("b", ok=False)
    assert driver.status("d") is S.WAITING  # the join still waits for c
    after_c = driver.report("c")
    assert after_c.ready == ("f",)
    assert [(k, after_c.step(k).status, after_c.step(k).skip_cause) for k in ("d", "e")] == [
        ("d", S.SKIPPED, SkipCause.UPSTREAM_FAILED), ("e", S.SKIPPED, SkipCause.UPSTREAM_FAILED),
    ]
    assert after_c.step("d").error == "upstream step 'b' failed"
    assert after_c.step("e").error == "upstream step 'd' was skipped after a failure"
    driver.report("f")
    assert driver.run.status is WorkflowRunStatus.SUCCEEDED


def test_continue_lets_dependents_run_as_if_it_had_succeeded_with_a_null_output():
    driver = Driver(a_workflow(
        step("a", on_failure="continue"),
        step("b", "a", inputs={"got": "$.steps.a.output", "why": "$.steps.a.error"}, when="steps.a.status == 'failed'"),
    ))
    after = driver.report("a", ok=False, output={"partial": 1}, error="timeout")
    assert after.ready == ("b",)
    assert after.step("a").output is None
    assert after.step("b").input == {"got": None, "why": "timeout"}
    driver.report("b")
    assert driver.run.status is WorkflowRunStatus.SUCCEEDED


def test_conditional_branches_join_after_the_branch_taken():
    workflow = a_workflow(
        step("check"),
        step("big", "check", when="steps.check.output.total > 100"),
        step("small", "check", when="steps.check.output.total <= 100"),
        step("report", "big", "small"),
    )
    driver = Driver(workflow)
    after = driver.report("check", output={"total": 250})
    assert after.ready == ("big",)
    assert (after.step("small").status, after.step("small").skip_cause) == (S.SKIPPED, SkipCause.CONDITION)
    assert after.step("small").error == "condition is false: steps.check.output.total <= 100"
    assert driver.report("big").ready == ("report",)
    driver.report("report")
    assert driver.run.status is WorkflowRunStatus.SUCCEEDED


def test_when_every_branch_is_skipped_the_steps_after_them_are_skipped_too():
    driver = Driver(a_workflow(
        step("a"), step("b", "a", when="False"), step("c", "a", when="trigger.go"), step("d", "b", "c"), step("e", "d"),
    ), input={"go": False})
    after = driver.report("a")
    assert [(k, after.step(k).skip_cause) for k in "bcde"] == [
        ("b", SkipCause.CONDITION), ("c", SkipCause.CONDITION), ("d", SkipCause.NO_BRANCH), ("e", SkipCause.NO_BRANCH),
    ]
    assert after.run.status is WorkflowRunStatus.SUCCEEDED


def test_a_condition_that_cannot_be_evaluated_fails_the_step_under_its_own_policy():
    halting = Driver(a_workflow(step("a"), step("b", "a", when="steps.a.output.count > 0")))
    after = halting.report("a", output={})
    assert after.step("b").status is S.FAILED
    assert after.step("b").error == "when: steps.a.output.count: has no key 'count'"
    assert after.run.status is WorkflowRunStatus.FAILED and after.run.error.startswith("step 'b' failed: when:")
    tolerant = Driver(a_workflow(step("a"), step("b", "a", when="steps.a.output.count > 0", on_failure="continue"), step("c", "b")))
    assert tolerant.report("a", output={}).ready == ("c",)


def test_an_input_that_cannot_be_resolved_fails_the_step():
    driver = Driver(a_workflow(step("a"), step("b", "a", inputs={"id": "$.trigger.customer_id"}, on_failure="skip"), step("c", "b")))
    after = driver.report("a")
    assert after.step("b").error == "inputs.id: $.trigger.customer_id: has no key 'customer_id'"
    assert after.step("c").skip_cause is SkipCause.UPSTREAM_FAILED
    assert after.run.status is WorkflowRunStatus.SUCCEEDED


def test_a_root_step_is_decided_when_the_run_starts():
    driver = Driver(a_workflow(step("a", when="trigger.region == 'eu'"), step("b", "a"), step("c")), input={"region": "us"})
    assert driver.last.ready == ("c",)
    assert driver.statuses() == {"a": "skipped", "b": "skipped", "c": "ready"}
    broken = Driver(a_workflow(step("a", inputs={"x": "$.trigger.missing"}), step("b")))
    assert broken.run.status is WorkflowRunStatus.FAILED and broken.statuses() == {"a": "failed", "b": "canceled"}
    nothing = Driver(a_workflow(step("a", when="false")))
    assert nothing.run.status is WorkflowRunStatus.SUCCEEDED


def test_a_failed_attempt_is_retried_under_the_step_policy_then_fails():
    policy = RetryPolicy(max_attempts=2, backoff=timedelta(seconds=10), jitter=False)
    driver = Driver(a_workflow(step("a", retry=policy), step("b", "a")))
    retried = driver.report("a", ok=False, error="HTTP 503")
    state = retried.step("a")
    assert (state.status, state.attempt, state.error, state.not_before) == (S.READY, 2, "HTTP 503", driver.clock + 10 * SECOND)
    assert state.job_run_id is None and state.started_at == T0
    assert retried.ready == ("a",) and retried.run.status is WorkflowRunStatus.RUNNING
    assert driver.report("a", ok=False).run.status is WorkflowRunStatus.FAILED
    assert driver.last.step("a").attempt == 2


def test_a_failure_the_engine_already_retried_is_final():
    driver = Driver(a_workflow(step("a", retry=RetryPolicy(max_attempts=3))))
    driver.dispatch("a")
    after = advance(
        driver.workflow, driver.run, driver.last.steps,
        StepOutcome(key="a", succeeded=False, error="gave up", at=T0 + SECOND, may_retry=False),
    )
    assert (after.step("a").status, after.run.status) == (S.FAILED, WorkflowRunStatus.FAILED)


def test_stale_and_duplicate_outcomes_change_nothing():
    driver = Driver(a_workflow(step("a"), step("b", "a")))
    driver.dispatch("a")
    stale = advance(driver.workflow, driver.run, driver.last.steps, StepOutcome(key="a", succeeded=True, at=T0, job_run_id="other"))
    assert stale.changed == ()
    driver.report("a", dispatch=False)
    duplicate = advance(driver.workflow, driver.run, driver.last.steps, StepOutcome(key="a", succeeded=False, at=T0))
    assert duplicate.changed == () and duplicate.steps == driver.last.steps
    with pytest.raises(InvalidTransition, match="is ready; it has no outcome to report"):
        advance(driver.workflow, driver.run, driver.last.steps, StepOutcome(key="b", succeeded=True, at=T0))


def test_canceling_a_run_cancels_its_unfinished_steps_and_lists_running_jobs():
    driver = Driver(a_workflow(step("a"), step("b"), step("c", "a", "b")))
    driver.report("a")
    driver.dispatch("b")
    canceled = cancel_run(driver.run, driver.last.steps, at=driver.clock, reason="operator")
    assert canceled.run.status is WorkflowRunStatus.CANCELED and canceled.run.error == "operator"
    assert [(s.step_key, s.status) for s in canceled.steps] == [("a", S.SUCCEEDED), ("b", S.CANCELED), ("c", S.CANCELED)]
    assert canceled.changed == ("b", "c") and canceled.cancel_runs == (driver.last.step("b").job_run_id,)
    with pytest.raises(InvalidTransition):
        cancel_run(canceled.run, canceled.steps, at=driver.clock)


def test_an_ai_planned_run_follows_the_plan_stages():
    workflow = a_workflow(step("a"), step("b"), step("c", "a"), planner="ai")
    driver = Driver(workflow, plan=Plan(stages=[["b"], ["a"], ["c"]], planner="openai:m"))
    assert driver.last.ready == ("b",) and driver.last.step("a").remaining == 1
    assert driver.report("b").ready == ("a",)
    assert driver.report("a").ready == ("c",)


def test_an_advance_given_some_states_asks_for_the_ones_its_rules_read():
    workflow = a_workflow(
        step("a"), step("b"), step("c", "a", "b", when="steps.a.status == 'succeeded'"), step("d", "c"),
    )
    driver = Driver(workflow)
    driver.report("a")
    driver.dispatch("b")
    steps = {s.step_key: s for s in driver.last.steps}
    outcome = StepOutcome(key="b", succeeded=True, at=T0 + 10 * SECOND)

    with pytest.raises(MissingSteps) as asked:
        advance(workflow, driver.run, [steps["b"]], outcome, complete=False)
    assert asked.value.keys == {"c"}
    with pytest.raises(MissingSteps) as asked:
        advance(workflow, driver.run, [steps["b"], steps["c"]], outcome, complete=False)
    assert asked.value.keys == {"a"}
    part = advance(workflow, driver.run, [steps["a"], steps["b"], steps["c"]], outcome, complete=False)
    assert part.ready == ("c",) and [s.step_key for s in part.steps] == ["a", "b", "c"]


def test_a_sink_that_finishes_needs_every_state_to_tell_whether_the_run_ended():
    workflow = a_workflow(step("a"), step("b"))
    driver = Driver(workflow)
    driver.dispatch("a")
    state = driver.last.step("a")

    with pytest.raises(MissingSteps) as asked:
        advance(workflow, driver.run, [state], StepOutcome(key="a", succeeded=True, at=T0 + SECOND), complete=False)
    assert asked.value.keys == {"b"}


def test_a_run_refuses_states_of_another_workflow():
    workflow = a_workflow(step("a"))
    run = WorkflowRun.new(workflow=workflow, now=T0)
    with pytest.raises(ValueError, match="exactly one state per step"):
        start_run(workflow, run, (), plan=deterministic_plan(workflow.briefs()), at=T0)


# -- the property: simulated runs of random workflows -------------------------------------


@st.composite
def random_workflows(draw) -> Workflow:
    size = draw(st.integers(min_value=1, max_value=8))
    steps = []
    for index in range(size):
        key = f"s{index}"
        depends_on = sorted(draw(st.sets(st.sampled_from([f"s{i}" for i in range(index)]))) if index else [])
        when = draw(st.sampled_from([None, None, "True", "False"] + [f"steps.{d}.status == 'succeeded'" for d in depends_on]))
        steps.append(step(
            key, *depends_on, when=when,
            on_failure=draw(st.sampled_from(list(OnFailure))),
            retry=RetryPolicy(max_attempts=draw(st.sampled_from([1, 1, 2])), jitter=False),
        ))
    return a_workflow(*steps, planner=draw(st.sampled_from(["deterministic", "ai"])))


def _check_invariants(workflow: Workflow, last: Advance, predecessors: dict[str, frozenset[str]]) -> None:
    states = {s.step_key: s for s in last.steps}
    for key, state in states.items():
        unfinished = sum(1 for p in predecessors[key] if not states[p].status.final)
        if state.status in (S.WAITING, S.PENDING):
            assert state.remaining == unfinished, f"{key} counts {state.remaining}, {unfinished} unfinished"
        if state.status in (S.READY, S.RUNNING, S.SUCCEEDED) or (state.status is S.FAILED and state.started_at):
            assert unfinished == 0, f"{key} became {state.status} before its predecessors finished"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workflow=random_workflows(), data=st.data())
def test_random_runs_respect_order_run_each_step_at_most_once_and_end_as_the_policies_say(workflow, data):
    stages = data.draw(st.permutations(deterministic_plan(workflow.briefs()).keys)) if workflow.planner == "ai" else None
    plan = Plan(stages=[[k] for k in stages]) if stages is not None else deterministic_plan(workflow.briefs())
    if stages is not None and any(d not in stages[: stages.index(s.key)] for s in workflow.steps for d in s.depends_on):
        plan = deterministic_plan(workflow.briefs())  # a random order must still honour the dependencies
    driver = Driver(workflow, plan=plan)
    predecessors = workflow.predecessors(plan)
    finishes: dict[str, int] = {}
    dispatched: list[tuple[str, int]] = []
    for _ in range(200):
        _check_invariants(workflow, driver.last, predecessors)
        if driver.run.status.final:
            break
        ready = [s.step_key for s in driver.last.steps if s.status is S.READY]
        running = [s.step_key for s in driver.last.steps if s.status is S.RUNNING]
        assert ready or running, "a running run must have something to do"
        if ready and (not running or data.draw(st.booleans())):
            key = data.draw(st.sampled_from(ready))
            dispatched.append((key, driver.last.step(key).attempt))
            driver.dispatch(key)
            continue
        key = data.draw(st.sampled_from(running))
        before = driver.last.step(key).attempt
        after = driver.report(key, ok=data.draw(st.booleans()), output={"k": key})
        if after.step(key).status.final:
            finishes[key] = finishes.get(key, 0) + 1
        else:
            assert after.step(key).attempt == before + 1 <= workflow.step(key).retry.max_attempts
    else:
        pytest.fail("the run never finished")

    states = {s.step_key: s for s in driver.last.steps}
    assert all(s.status.final for s in states.values())
    assert all(count == 1 for count in finishes.values()), "a step finished twice"
    assert len(dispatched) == len(set(dispatched)), "an attempt was dispatched twice"
    assert all(attempt <= workflow.step(key).retry.max_attempts for key, attempt in dispatched)
    event(f"run {driver.run.status}")
    event(f"statuses {sorted({str(s.status) for s in states.values()})}")
    halted = [k for k, s in states.items() if s.status is S.FAILED and workflow.step(k).on_failure is OnFailure.HALT]
    if halted:
        assert driver.run.status is WorkflowRunStatus.FAILED
        assert len(halted) == 1 and driver.run.error.startswith(f"step {halted[0]!r} failed")
    else:
        assert driver.run.status is WorkflowRunStatus.SUCCEEDED
        assert S.CANCELED not in {s.status for s in states.values()}
    for key, state in states.items():
        preds = predecessors[key]
        blocked = [
            p for p in preds
            if (states[p].status is S.FAILED and workflow.step(p).on_failure is OnFailure.SKIP)
            or states[p].skip_cause is SkipCause.UPSTREAM_FAILED
        ]
        if state.status is S.CANCELED:
            assert halted
        elif blocked and state.status is not S.CANCELED:
            assert (state.status, state.skip_cause) == (S.SKIPPED, SkipCause.UPSTREAM_FAILED)
        if state.status is S.SUCCEEDED and preds:
            assert any(
                states[p].status is S.SUCCEEDED or (states[p].status is S.FAILED and workflow.step(p).on_failure is OnFailure.CONTINUE)
                for p in preds
            )

