"""Workflows: versioned DAGs of steps, their plans, runs and step states.

The request types carry the definition's shape (types, required fields, no
unknown fields); the domain (:func:`domain.workflow_specs.workflow_fields`)
checks everything else and names each problem's path (``steps[2].depends_on[0]``,
cycles, conditions, references).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from api.http.schemas.common import Id, NextCursor, literal_of, utc
from api.http.schemas.endpoints import HttpTargetSpec, PythonTargetSpec, RetryOut, RetrySpec
from api.http.schemas.jobs import Slug
from domain.planning import Plan
from domain.workflow_specs import step_spec, trigger_spec
from domain.workflows import (
    OnFailure,
    PlannerKind,
    SkipCause,
    StepStatus,
    TriggerKind,
    Workflow,
    WorkflowRun,
    WorkflowRunStatus,
    WorkflowRunStep,
    WorkflowStatus,
)

WorkflowStatusName = Annotated[literal_of(WorkflowStatus), Meta(description="active, or archived (read-only, never runs).")]
PlannerName = Annotated[
    literal_of(PlannerKind),
    Meta(description="Who orders the steps: deterministic (their dependencies) or ai (reads the descriptions)."),
]
OnFailureName = Annotated[
    literal_of(OnFailure),
    Meta(description="What a final failure does: halt the run, skip the dependents, or continue as if it succeeded."),
]
StepKey = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=63,
        description="The step's key: lowercase letters, digits or '_', starting with a letter; unique in the workflow.",
    ),
]
Name = Annotated[str, Meta(min_length=1, max_length=200, description="A display name.")]
Description = Annotated[
    str, Meta(max_length=10_000, description="The workflow's goal in natural language (the AI planner reads it).")
]
StepDescription = Annotated[str, Meta(max_length=10_000, description="What the step does, in natural language.")]
Condition = Annotated[
    str,
    Meta(
        max_length=2000,
        description="A condition read when the step's predecessors have finished; the step is skipped when it is "
        "false, e.g. steps.fetch.output.count > 0.",
    ),
]
Inputs = Annotated[
    dict[str, Any],
    Meta(description="Input name to a literal JSON value or a reference ($.trigger.x, $.steps.fetch.output.items)."),
]
Topic = Annotated[
    str, Meta(min_length=1, max_length=200, description="1-200 letters, digits or . _ : / * -, e.g. invoices.imported.")
]
Payload = Annotated[dict[str, Any], Meta(description="A JSON object.")]


class EndpointTargetSpec(Struct, tag_field="kind", tag="endpoint", kw_only=True, forbid_unknown_fields=True):
    """Run an existing endpoint of the tenant, with the step's inputs as its parameters."""

    endpoint_id: Annotated[str, Meta(min_length=1, max_length=64, description="The endpoint's id.")]


StepTarget = Annotated[
    EndpointTargetSpec | HttpTargetSpec | PythonTargetSpec,
    Meta(description="What the step runs: `kind` is endpoint, http or python."),
]


class ManualTriggerSpec(Struct, tag_field="kind", tag="manual", kw_only=True, forbid_unknown_fields=True):
    """Started through the API or the CLI."""


class CronTriggerSpec(Struct, tag_field="kind", tag="cron", kw_only=True, forbid_unknown_fields=True):
    """Started on a cron schedule."""

    cron: Annotated[str, Meta(min_length=1, max_length=200, description="A five-field cron expression, e.g. 0 2 * * *.")]
    timezone: Annotated[str, Meta(max_length=100, description="The IANA time zone the cron reads in (default UTC).")] = "UTC"


class EventTriggerSpec(Struct, tag_field="kind", tag="event", kw_only=True, forbid_unknown_fields=True):
    """Started by each event published on a topic; the event's payload is the run's input."""

    topic: Topic


TriggerSpec = Annotated[
    ManualTriggerSpec | CronTriggerSpec | EventTriggerSpec,
    Meta(description="What starts a run: `kind` is manual, cron or event."),
]


class StepSpec(Struct, kw_only=True, forbid_unknown_fields=True):
    """One step of a definition: `key` and `target` are required."""

    key: StepKey
    description: StepDescription | UnsetType = UNSET
    target: StepTarget
    depends_on: Annotated[list[str], Meta(max_length=200, description="Keys of the steps that must finish first.")] | UnsetType = UNSET
    when: Condition | None | UnsetType = UNSET
    inputs: Inputs | UnsetType = UNSET
    retry: Annotated[RetrySpec, Meta(description="The retry policy (default: one attempt).")] | UnsetType = UNSET
    on_failure: OnFailureName | UnsetType = UNSET
    timeout_s: Annotated[
        Annotated[float, Meta(gt=0)] | None,
        Meta(description="A step attempt fails when it takes longer (seconds, at most a day); null keeps the target's own."),
    ] | UnsetType = UNSET


Steps = Annotated[list[StepSpec], Meta(min_length=1, max_length=200, description="The steps (1 to 200).")]
Triggers = Annotated[list[TriggerSpec], Meta(max_length=20, description="What starts runs (0 to 20, no two alike).")]


class WorkflowCreate(Struct, kw_only=True, forbid_unknown_fields=True):
    """A workflow definition: `slug`, `name` and `steps` are required. The whole definition is
    checked at once; each problem answers with its path (steps[2].depends_on[0], a cycle, a condition)."""

    slug: Slug
    name: Name
    description: Description | UnsetType = UNSET
    planner: PlannerName | UnsetType = UNSET
    steps: Steps
    triggers: Triggers | UnsetType = UNSET


class WorkflowUpdate(Struct, kw_only=True, forbid_unknown_fields=True):
    """The next version's whole definition: fields left out take their defaults (no description,
    the deterministic planner, no triggers). `slug` may be given but cannot change."""

    slug: Slug | UnsetType = UNSET
    name: Name
    description: Description | UnsetType = UNSET
    planner: PlannerName | UnsetType = UNSET
    steps: Steps
    triggers: Triggers | UnsetType = UNSET


class WorkflowRunRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Start a run; `input` is its trigger payload (`$.trigger` in conditions and references)."""

    input: Annotated[dict[str, Any], Meta(description="The run's input, a JSON object.")] = {}


class StepOut(Struct, kw_only=True):
    """One step of a workflow version."""

    key: StepKey
    description: StepDescription
    target: StepTarget
    depends_on: Annotated[list[str], Meta(description="Keys of the steps that must finish first.")]
    when: Annotated[str | None, Meta(description="The step's condition; null runs it whenever it is reached.")]
    inputs: Inputs
    retry: Annotated[RetryOut, Meta(description="The retry policy.")]
    on_failure: OnFailureName
    timeout_s: Annotated[float | None, Meta(description="An attempt fails when it takes longer (seconds); null: the target's own.")]

    @classmethod
    def of(cls, spec: dict[str, Any]) -> StepOut:
        """From :func:`domain.workflow_specs.step_spec`."""
        return msgspec.convert(spec, type=cls)


class WorkflowOut(Struct, kw_only=True):
    """One version of a workflow."""

    id: Id
    slug: Slug
    name: Name
    description: Description
    version: Annotated[int, Meta(ge=1, description="1 for the first definition; each update adds one.")]
    planner: PlannerName
    steps: Annotated[list[StepOut], Meta(description="The steps, in declared order.")]
    triggers: Annotated[list[TriggerSpec], Meta(description="What starts runs.")]
    status: WorkflowStatusName
    created_at: Annotated[datetime, Meta(description="When the workflow was first defined (UTC).")]
    updated_at: Annotated[datetime, Meta(description="When this version was made, or the workflow archived (UTC).")]

    @classmethod
    def of(cls, workflow: Workflow) -> WorkflowOut:
        return cls(
            id=workflow.id,
            slug=workflow.slug,
            name=workflow.name,
            description=workflow.description,
            version=workflow.version,
            planner=workflow.planner.value,
            steps=[StepOut.of(step_spec(step)) for step in workflow.steps],
            triggers=[msgspec.convert(trigger_spec(t), type=TriggerSpec) for t in workflow.triggers],
            status=workflow.status.value,
            created_at=utc(workflow.created_at),
            updated_at=utc(workflow.updated_at),
        )


class WorkflowList(Struct, kw_only=True):
    """A page of workflows (their newest versions), newest first."""

    items: Annotated[list[WorkflowOut], Meta(description="The workflows on this page.")]
    next_cursor: NextCursor


class PlanOut(Struct, kw_only=True):
    """The order of a run's steps: stages run one after another, the steps of a stage in parallel."""

    stages: Annotated[list[list[str]], Meta(description="Step keys, stage by stage.")]
    rationale: Annotated[str, Meta(description="Why this order, in the planner's words.")]
    planner: Annotated[str, Meta(description="Who made it: deterministic, or openai:<model>.")]
    fallback_reason: Annotated[
        str | None,
        Meta(description="Why the deterministic plan replaced the AI planner's answer; null when it did not."),
    ]

    @classmethod
    def of(cls, plan: Plan) -> PlanOut:
        return cls(
            stages=[list(stage) for stage in plan.stages],
            rationale=plan.rationale,
            planner=plan.planner,
            fallback_reason=plan.fallback_reason,
        )


RunStatusName = Annotated[
    literal_of(WorkflowRunStatus), Meta(description="pending, running, succeeded, failed or canceled.")
]
StepStatusName = Annotated[
    literal_of(StepStatus),
    Meta(description="pending, waiting (for predecessors), ready, running, succeeded, failed, skipped or canceled."),
]


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


class WorkflowRunOut(Struct, kw_only=True):
    """One run of one version of a workflow."""

    id: Id
    workflow_id: Annotated[str, Meta(description="The workflow's id.")]
    workflow_version: Annotated[int, Meta(ge=1, description="The version it runs; later updates do not change it.")]
    status: RunStatusName
    trigger: Annotated[literal_of(TriggerKind), Meta(description="What started it: manual, cron or event.")]
    input: Annotated[dict[str, Any], Meta(description="Its input: the trigger's payload ($.trigger).")]
    plan: Annotated[PlanOut | None, Meta(description="The plan it follows; null until it starts.")]
    created_at: Annotated[datetime, Meta(description="When it was created (UTC).")]
    started_at: Annotated[datetime | None, Meta(description="When it started (UTC).")]
    finished_at: Annotated[datetime | None, Meta(description="When it reached its final state (UTC).")]
    duration_s: Annotated[float | None, Meta(description="finished_at - started_at, in seconds.")]
    error: Annotated[str | None, Meta(description="Why it failed or was canceled.")]

    @classmethod
    def of(cls, run: WorkflowRun) -> WorkflowRunOut:
        return cls(**_run_fields(run))


def _run_fields(run: WorkflowRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "workflow_id": run.workflow_id,
        "workflow_version": run.workflow_version,
        "status": run.status.value,
        "trigger": run.trigger.value,
        "input": dict(run.input),
        "plan": PlanOut.of(run.plan) if run.plan is not None else None,
        "created_at": utc(run.created_at),
        "started_at": utc(run.started_at),
        "finished_at": utc(run.finished_at),
        "duration_s": _seconds_between(run.started_at, run.finished_at),
        "error": run.error,
    }


class WorkflowRunStepOut(Struct, kw_only=True):
    """The state of one step in one run."""

    step_key: StepKey
    status: StepStatusName
    remaining: Annotated[int, Meta(ge=0, description="Predecessors that have not finished yet.")]
    attempt: Annotated[int, Meta(ge=1, description="The current attempt, from 1.")]
    job_run_id: Annotated[str | None, Meta(description="The run executing (or that executed) the current attempt.")]
    input: Annotated[dict[str, Any] | None, Meta(description="The resolved inputs it was dispatched with.")]
    output: Annotated[Any, Meta(description="What it produced, once it succeeded.")]
    error: Annotated[str | None, Meta(description="Why it failed, was skipped or canceled.")]
    skip_cause: Annotated[
        literal_of(SkipCause) | None,
        Meta(description="Why it was skipped: condition, no-branch or upstream-failed."),
    ]
    not_before: Annotated[datetime | None, Meta(description="A retry waits until this time (UTC).")]
    started_at: Annotated[datetime | None, Meta(description="When its first attempt started (UTC).")]
    finished_at: Annotated[datetime | None, Meta(description="When it reached its final state (UTC).")]
    duration_s: Annotated[float | None, Meta(description="finished_at - started_at, in seconds.")]

    @classmethod
    def of(cls, step: WorkflowRunStep) -> WorkflowRunStepOut:
        return cls(
            step_key=step.step_key,
            status=step.status.value,
            remaining=step.remaining,
            attempt=step.attempt,
            job_run_id=step.job_run_id,
            input=dict(step.input) if step.input is not None else None,
            output=step.output,
            error=step.error,
            skip_cause=step.skip_cause.value if step.skip_cause is not None else None,
            not_before=utc(step.not_before),
            started_at=utc(step.started_at),
            finished_at=utc(step.finished_at),
            duration_s=_seconds_between(step.started_at, step.finished_at),
        )


class WorkflowRunStepList(Struct, kw_only=True):
    """Every step of a run, in the workflow's declared order."""

    items: Annotated[list[WorkflowRunStepOut], Meta(description="The steps' states.")]


class WorkflowRunDetail(WorkflowRunOut, kw_only=True):
    """One run of one version of a workflow, with the state and output of each step."""

    steps: Annotated[list[WorkflowRunStepOut], Meta(description="Each step's state, in the workflow's declared order.")]

    @classmethod
    def with_steps(cls, run: WorkflowRun, steps: list[WorkflowRunStep]) -> WorkflowRunDetail:
        return cls(**_run_fields(run), steps=[WorkflowRunStepOut.of(step) for step in steps])


class WorkflowRunList(Struct, kw_only=True):
    """A page of a workflow's runs, newest first."""

    items: Annotated[list[WorkflowRunOut], Meta(description="The runs on this page.")]
    next_cursor: NextCursor
