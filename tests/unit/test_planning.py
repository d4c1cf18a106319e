"""Plans, their validation, the deterministic planner and the fallback (``domain.planning``)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import ValidationFailed
from domain.planning import (
    DETERMINISTIC,
    DeterministicPlanner,
    Plan,
    StepBrief,
    deterministic_plan,
    plan_errors,
    plan_predecessors,
    plan_with_fallback,
    validate_plan,
)
from tests.unit.test_dag import dags

STEPS = (
    StepBrief(key="fetch", description="download the invoices"),
    StepBrief(key="audit", description="check the ledger"),
    StepBrief(key="parse", description="parse them", depends_on=("fetch",)),
    StepBrief(key="notify", description="tell finance", depends_on=("parse", "audit")),
)


def problems(stages, steps=STEPS):
    return [(e.path, e.message) for e in plan_errors(Plan(stages=stages), steps)]


def test_the_deterministic_plan_is_the_topological_layers_in_declared_order():
    plan = deterministic_plan(STEPS)
    assert plan.stages == (("fetch", "audit"), ("parse",), ("notify",))
    assert plan.planner == DETERMINISTIC and plan.fallback_reason is None
    assert plan_errors(plan, STEPS) == []


async def test_the_deterministic_planner_answers_its_plan():
    assert await DeterministicPlanner().plan("bill customers", STEPS) == deterministic_plan(STEPS)


def test_a_valid_plan_may_serialise_steps_that_could_run_together():
    assert problems([["audit"], ["fetch"], ["parse"], ["notify"]]) == []


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        ([["fetch", "audit"], ["parse"]], [("stages", "step 'notify' is missing")]),
        (
            [["fetch", "audit"], ["parse", "fetch"], ["notify"]],
            [("stages[1][1]", "step 'fetch' appears twice (also stages[0][0])")],
        ),
        ([["fetch", "audit", "ghost"], ["parse"], ["notify"]], [("stages[0][2]", "unknown step 'ghost'")]),
        (
            [["fetch", "audit", "parse"], ["notify"]],
            [("stages[0][2]", "step 'parse' depends on 'fetch', which is not in an earlier stage (it is in stages[0])")],
        ),
        (
            [["notify"], ["fetch", "audit"], ["parse"]],
            [
                ("stages[0][0]", "step 'notify' depends on 'parse', which is not in an earlier stage (it is in stages[2])"),
                ("stages[0][0]", "step 'notify' depends on 'audit', which is not in an earlier stage (it is in stages[1])"),
            ],
        ),
        ([["fetch", "audit"], [], ["parse"], ["notify"]], [("stages[1]", "is empty")]),
    ],
)
def test_an_invalid_plan_names_each_problem(stages, expected):
    assert sorted(problems(stages)) == sorted(expected)
    with pytest.raises(ValidationFailed):
        validate_plan(Plan(stages=stages), STEPS)


def test_a_plan_must_be_stages_of_strings():
    with pytest.raises(ValidationFailed, match=r"stages\[0\]\[1\]: must be a step key"):
        Plan(stages=[["a", 3]])
    with pytest.raises(ValidationFailed, match=r"stages\[0\]: must be a list of step keys"):
        Plan(stages=["ab"])


def test_a_plan_round_trips_through_a_dict():
    plan = Plan(stages=[["a"], ["b", "c"]], rationale="why", planner="openai:m", fallback_reason=None)
    assert Plan.from_dict(plan.as_dict()) == plan
    assert plan.as_dict()["stages"] == [["a"], ["b", "c"]]


class Answering:
    """A planner that answers ``answer`` (a plan, or an exception to raise)."""

    name = "fake"

    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    async def plan(self, goal, steps):
        self.calls.append((goal, tuple(steps)))
        if isinstance(self.answer, BaseException):
            raise self.answer
        if self.answer == "slow":
            await asyncio.sleep(10)
        return self.answer


async def test_a_valid_answer_is_used_as_it_is():
    answer = Plan(stages=[["audit"], ["fetch"], ["parse"], ["notify"]], rationale="audit first", planner="fake")
    planner = Answering(answer)
    assert await plan_with_fallback(planner, "bill customers", STEPS) == answer
    assert planner.calls == [("bill customers", STEPS)]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (RuntimeError("connection reset"), "the fake planner failed: RuntimeError: connection reset"),
        (ValueError(), "the fake planner failed: ValueError"),
        ("not a plan", "the fake planner answered str, not a plan"),
        (
            Plan(stages=[["fetch", "audit"], ["parse"]]),
            "the fake planner's plan was invalid: stages: step 'notify' is missing",
        ),
        (
            Plan(stages=[["fetch", "audit", "parse"], ["notify"]]),
            "the fake planner's plan was invalid: stages[0][2]: step 'parse' depends on 'fetch', which is not in an "
            "earlier stage (it is in stages[0])",
        ),
    ],
)
async def test_a_failure_or_an_invalid_answer_falls_back_to_the_deterministic_plan_and_says_why(answer, reason):
    plan = await plan_with_fallback(Answering(answer), "goal", STEPS)
    assert plan.stages == deterministic_plan(STEPS).stages
    assert plan.planner == DETERMINISTIC
    assert plan.fallback_reason == reason


async def test_a_planner_that_does_not_answer_in_time_falls_back():
    plan = await plan_with_fallback(Answering("slow"), "goal", STEPS, timeout_s=0.01)
    assert plan.fallback_reason == "the fake planner did not answer within 0.01s"


async def test_cancellation_is_not_mistaken_for_a_planner_failure():
    with pytest.raises(asyncio.CancelledError):
        await plan_with_fallback(Answering(asyncio.CancelledError()), "goal", STEPS)


async def test_an_invalid_graph_is_refused_rather_than_planned():
    with pytest.raises(ValidationFailed, match="forms a cycle"):
        await plan_with_fallback(Answering(RuntimeError()), "goal", [StepBrief(key="a", depends_on=("a",))])


async def test_the_deterministic_planner_is_not_called_twice():
    assert (await plan_with_fallback(DeterministicPlanner(), "goal", STEPS)).fallback_reason is None


def test_a_long_fallback_reason_is_bounded():
    assert len(Plan(stages=[["a"]], fallback_reason="x" * 5000).fallback_reason) == 1000


def test_plan_predecessors_make_each_stage_wait_for_the_previous_one():
    steps = [StepBrief(key=k) for k in ("a", "b", "c", "d")] + [StepBrief(key="e", depends_on=("a",))]
    plan = Plan(stages=[["a", "b"], ["c"], ["d", "e"]])
    assert plan_predecessors(plan, steps) == {
        "a": frozenset(), "b": frozenset(), "c": frozenset({"a", "b"}),
        "d": frozenset({"c"}), "e": frozenset({"a", "c"}),
    }


@st.composite
def graphs_and_plans(draw):
    graph = draw(dags())
    steps = [StepBrief(key=k, depends_on=tuple(d)) for k, d in graph.items()]
    keys = list(graph)
    stage_of = {k: draw(st.integers(min_value=0, max_value=len(keys))) for k in keys}
    extra = draw(st.lists(st.sampled_from(keys + ["ghost"]), max_size=2))
    stages = [[k for k in draw(st.permutations(keys)) if stage_of[k] == i] for i in range(len(keys) + 1)]
    stages = [s for s in stages if s]
    if extra:
        stages.append(extra)
    return steps, Plan(stages=stages)


@given(case=graphs_and_plans())
def test_a_plan_is_valid_exactly_when_it_holds_each_step_once_after_its_dependencies(case):
    steps, plan = case
    stage = {}
    once = True
    for index, keys in enumerate(plan.stages):
        for key in keys:
            once = once and key not in stage
            stage.setdefault(key, index)
    expected = (
        once
        and set(stage) == {s.key for s in steps}
        and all(stage[d] < stage[s.key] for s in steps for d in s.depends_on)
    )
    assert (plan_errors(plan, steps) == []) is expected


@given(graph=dags())
def test_the_deterministic_plan_is_always_valid_and_its_predecessors_keep_the_dependencies(graph):
    steps = [StepBrief(key=k, depends_on=tuple(d)) for k, d in graph.items()]
    plan = deterministic_plan(steps)
    assert plan_errors(plan, steps) == []
    predecessors = plan_predecessors(plan, steps)
    assert all(set(s.depends_on) <= predecessors[s.key] for s in steps)
