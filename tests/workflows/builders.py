"""Builders of workflow entities for the contract suites: sensible defaults, overrides taken."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from domain.planning import Plan
from domain.retry import RetryPolicy
from domain.targets import HttpTarget, PythonTarget
from domain.workflows import (
    EndpointRef,
    OnFailure,
    PlannerKind,
    SkipCause,
    Step,
    StepStatus,
    Trigger,
    Workflow,
    WorkflowRun,
    WorkflowRunStep,
    WorkflowRunStatus,
)
from tests.builders import AT, T0, TENANT

_numbers = itertools.count(1)


def a_workflow(*steps: Step, **overrides: Any) -> Workflow:
    """Version 1 of an active workflow: a two-step chain unless ``steps`` are given."""
    n = next(_numbers)
    fields: dict[str, Any] = {
        "tenant_id": TENANT,
        "slug": f"workflow-{n}",
        "name": f"Workflow {n}",
        "steps": steps or (
            Step(key="fetch", target=PythonTarget(handler="t.fetch")),
            Step(key="bill", target=PythonTarget(handler="t.bill"), depends_on=("fetch",)),
        ),
        "now": T0,
    }
    fields.update(overrides)
    return Workflow.new(**fields)


def a_fully_loaded_workflow(**overrides: Any) -> Workflow:
    """A workflow with every field away from its default: conditions, inputs, policies, triggers."""
    steps = (
        Step(
            key="fetch", description="Download yesterday's usage — Zürich.",
            target=EndpointRef(endpoint_id="0190a0a0-0000-7000-8000-000000000001"),
            inputs={"customer": "$.trigger.customer_id", "day": "yesterday", "n": 3, "nested": {"a": [1, None]}},
            retry=RetryPolicy(max_attempts=3, backoff=timedelta(seconds=5), backoff_max=timedelta(seconds=60), jitter=False),
            timeout=timedelta(seconds=120),
        ),
        Step(
            key="bill", target=PythonTarget(handler="billing.compute", params={"currency": "EUR"}),
            depends_on=("fetch",), when="steps.fetch.output.count > 0",
            inputs={"usage": "$.steps.fetch.output.items", "escaped": "$$.5"}, on_failure=OnFailure.SKIP,
        ),
        Step(
            key="notify", target=HttpTarget(method="POST", url="https://hooks.example.com/finance", body={"x": 1}),
            depends_on=("bill",), on_failure=OnFailure.CONTINUE,
        ),
    )
    fields: dict[str, Any] = {
        "steps": steps,
        "description": "Bill every customer, then tell finance.\nNever twice.",
        "planner": PlannerKind.AI,
        "triggers": (Trigger.on_cron("0 2 * * *", "Europe/Berlin"), Trigger.on_event("usage.imported"), Trigger.manual()),
        "now": AT,
    }
    fields.update(overrides)
    return a_workflow(*fields.pop("steps"), **fields)


def a_workflow_run(workflow: Workflow, **overrides: Any) -> WorkflowRun:
    run = WorkflowRun.new(workflow=workflow, now=T0, input=overrides.pop("input", {"customer_id": "c-7"}))
    if overrides:
        from attrs import evolve

        run = evolve(run, **overrides)
    return run


def a_started_run(workflow: Workflow, **overrides: Any) -> WorkflowRun:
    """A running run with a plan that fell back (every plan field set)."""
    plan = Plan(stages=[[s.key] for s in workflow.steps], rationale="one by one", planner="deterministic",
                fallback_reason="the openai planner failed: Timeout")
    return a_workflow_run(workflow, **overrides).start(at=T0 + timedelta(seconds=1), plan=plan)


def a_finished_step(run: WorkflowRun, key: str = "fetch", **overrides: Any) -> WorkflowRunStep:
    fields: dict[str, Any] = {
        "tenant_id": run.tenant_id,
        "workflow_run_id": run.id,
        "step_key": key,
        "status": StepStatus.SKIPPED,
        "remaining": 0,
        "attempt": 2,
        "job_run_id": "0190a0a0-0000-7000-8000-0000000000aa",
        "input": {"customer": "c-7", "list": [1, 2.5, None, {"x": "ü"}]},
        "output": [{"id": 1}, "two", None],
        "error": "condition is false: steps.fetch.output.count > 0",
        "skip_cause": SkipCause.CONDITION,
        "not_before": AT,
        "started_at": AT + timedelta(seconds=1),
        "finished_at": AT + timedelta(seconds=2, microseconds=5),
    }
    fields.update(overrides)
    return WorkflowRunStep(**fields)


__all__ = [
    "WorkflowRunStatus", "a_finished_step", "a_fully_loaded_workflow", "a_started_run", "a_workflow", "a_workflow_run",
]
