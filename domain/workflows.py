"""Workflows: versioned DAGs of steps, their runs, and the policy that advances a run.

A :class:`Workflow` is a definition (steps, triggers, planner) that is never
changed in place: :meth:`Workflow.revised` returns the next version. A
:class:`WorkflowRun` executes one version; it holds one
:class:`WorkflowRunStep` per step, whose ``remaining`` counts the
predecessors that have not finished, so a restarted orchestrator resumes
from the stored rows alone.

Step states::

    pending ─► waiting ─► ready ─► running ─► succeeded
       │          │         ▲         ├──────► failed
       │          │         └─retry───┤
       └──────────┴─► skipped         │
       (any unfinished) ─► canceled ◄─┘        (waiting/ready ─► failed: its condition or inputs could not be read)

The orchestrator drives a run with three pure functions, each returning an
:class:`Advance` (the run and every step, what changed, what is now ready,
which job runs to cancel): :func:`start_run`, :func:`advance` (one step's
outcome) and :func:`cancel_run`. Their rules are in :func:`advance`.
"""

from __future__ import annotations

import enum
import re
from functools import cached_property
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NewType

from attrs import evolve, field, frozen

from domain.conditions import Condition, ExpressionError, Reference, is_reference, literal, parse_condition, parse_reference
from domain.dag import Node, validate_graph
from domain.errors import FieldError, InvalidTransition, NotFound, ValidationFailed
from domain.ids import EndpointId, RunId, TenantId, new_id
from domain.planning import Plan, StepBrief, plan_predecessors
from domain.retry import RetryPolicy
from domain.schedules import CronSchedule
from domain.targets import HttpTarget, PythonTarget
from domain.validation import aware, non_empty_text, non_negative_int, positive_int, slug, text

WorkflowId = NewType("WorkflowId", str)
WorkflowRunId = NewType("WorkflowRunId", str)

STEP_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
INPUT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
TOPIC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/*-]{0,199}$")
MAX_STEPS = 200
MAX_TRIGGERS = 20
MAX_INPUTS = 100
MAX_TIMEOUT = timedelta(hours=24)
ERROR_LIMIT = 4096


class PlannerKind(enum.StrEnum):
    DETERMINISTIC = "deterministic"
    AI = "ai"


class WorkflowStatus(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class OnFailure(enum.StrEnum):
    """What a step's final failure does: ``halt`` the run, ``skip`` its dependents, or
    ``continue`` as if it had succeeded (with a null output)."""

    HALT = "halt"
    SKIP = "skip"
    CONTINUE = "continue"


class TriggerKind(enum.StrEnum):
    MANUAL = "manual"
    CRON = "cron"
    EVENT = "event"


class WorkflowRunStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        return self not in (WorkflowRunStatus.PENDING, WorkflowRunStatus.RUNNING)


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        return self in (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELED)


class SkipCause(enum.StrEnum):
    """Why a step was skipped; ``upstream-failed`` passes on to its dependents, the others do not
    on their own (see :func:`advance`)."""

    CONDITION = "condition"
    """Its ``when`` was false."""
    NO_BRANCH = "no-branch"
    """Every predecessor was skipped by a condition (a branch not taken)."""
    UPSTREAM_FAILED = "upstream-failed"
    """A predecessor failed with ``on_failure: skip``, or was itself skipped for that reason."""


# -- definitions ---------------------------------------------------------------


def _check_step_key(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not STEP_KEY_RE.match(value):
        raise ValidationFailed.field(
            attribute.name, "must be 1-63 lowercase letters, digits or '_', starting with a letter"
        )


@frozen(kw_only=True)
class EndpointRef:
    """Run an existing endpoint (its target, with the step's inputs as parameters)."""

    kind: str = field(default="endpoint", init=False)
    endpoint_id: EndpointId = field(validator=non_empty_text(64))


StepTarget = EndpointRef | HttpTarget | PythonTarget


def _check_target(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, (EndpointRef, HttpTarget, PythonTarget)):
        raise ValidationFailed.field("target", "must be an endpoint reference, an http or a python target")


def _keys(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationFailed.field("depends_on", "must be a list of step keys")
    keys = tuple(value)
    for index, key in enumerate(keys):
        if not isinstance(key, str):
            raise ValidationFailed.field(f"depends_on[{index}]", "must be a step key (a string)")
    return keys


def _condition(value: Any) -> Condition | None:
    return None if value is None else parse_condition(value, path="when")


def input_errors(value: Any) -> list[FieldError]:
    """Every problem of a step's ``inputs``, with ``inputs.<name>`` paths."""
    if not isinstance(value, Mapping):
        return [FieldError("inputs", "must be an object")]
    if len(value) > MAX_INPUTS:
        return [FieldError("inputs", f"must have at most {MAX_INPUTS} entries")]
    errors: list[FieldError] = []
    for name, item in value.items():
        path = f"inputs.{name}"
        if not isinstance(name, str) or not INPUT_NAME_RE.match(name):
            errors.append(FieldError(path, "input names are 1-64 letters, digits or '_', not starting with a digit"))
        elif is_reference(item):
            try:
                parse_reference(item, path=path)
            except ValidationFailed as exc:
                errors.extend(exc.errors)
        else:
            problem = json_problem(item)
            if problem:
                errors.append(FieldError(path + problem[0], problem[1]))
    return errors


def _check_inputs(instance: Any, attribute: Any, value: Any) -> None:
    errors = input_errors(value)
    if errors:
        raise ValidationFailed(errors)


def json_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first place where ``value`` is not JSON-shaped, as ``(relative path, message)``."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = json_problem(item, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return path, "object keys must be strings"
            found = json_problem(item, f"{path}.{key}")
            if found:
                return found
        return None
    return path, f"must be JSON, not {type(value).__name__}"


def _check_timeout(instance: Any, attribute: Any, value: timedelta | None) -> None:
    if value is None:
        return
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValidationFailed.field("timeout", "must be greater than zero")
    if value > MAX_TIMEOUT:
        raise ValidationFailed.field("timeout", "must be at most 24 hours")


def _check_retry(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, RetryPolicy):
        raise ValidationFailed.field("retry", "must be a retry policy")


@frozen(kw_only=True)
class Step:
    """One node of a workflow.

    ``inputs`` maps an input name to a literal JSON value or a reference
    (``$.trigger.customer_id``, ``$.steps.fetch.output.items``; see
    :mod:`domain.conditions`); ``when`` is a condition read when the step's
    predecessors have finished. A step may read only the outputs of steps
    upstream of it. ``timeout`` of ``None`` leaves the target's own timeout.
    """

    key: str = field(validator=_check_step_key)
    description: str = field(default="", validator=text(10_000))
    target: StepTarget = field(validator=_check_target)
    depends_on: tuple[str, ...] = field(default=(), converter=_keys)
    when: Condition | None = field(default=None, converter=_condition)
    inputs: dict[str, Any] = field(factory=dict, validator=_check_inputs)
    retry: RetryPolicy = field(factory=RetryPolicy, validator=_check_retry)
    on_failure: OnFailure = field(default=OnFailure.HALT, converter=OnFailure)
    timeout: timedelta | None = field(default=None, validator=_check_timeout)

    def input_references(self) -> dict[str, Reference]:
        """The inputs that are references, parsed."""
        return {
            name: parse_reference(value, path=f"inputs.{name}")
            for name, value in self.inputs.items()
            if is_reference(value)
        }

    def references(self) -> tuple[tuple[str, str], ...]:
        """``(field path, step key)`` for every upstream step its ``when`` and ``inputs`` read."""
        found: list[tuple[str, str]] = []
        if self.when is not None:
            found.extend(("when", step) for step in sorted(self.when.steps))
        for name, reference in self.input_references().items():
            if reference.step is not None:
                found.append((f"inputs.{name}", reference.step))
        return tuple(found)

    def node(self) -> Node:
        return Node(key=self.key, depends_on=self.depends_on, references=self.references())

    def brief(self) -> StepBrief:
        return StepBrief(key=self.key, description=self.description, depends_on=self.depends_on)

    def resolve_inputs(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The inputs' values in ``context``; raises :class:`ExpressionError` naming the input."""
        resolved: dict[str, Any] = {}
        for name, value in self.inputs.items():
            if not is_reference(value):
                resolved[name] = literal(value)
                continue
            try:
                resolved[name] = parse_reference(value).resolve(context)
            except ExpressionError as exc:
                raise ExpressionError(f"inputs.{name}: {exc}") from None
        return resolved


@frozen(kw_only=True)
class Trigger:
    """What starts a run: ``manual`` (the API or CLI), ``cron`` (a :class:`CronSchedule`) or
    ``event`` (a published ``topic``). Build with :meth:`manual`, :meth:`on_cron`, :meth:`on_event`."""

    kind: TriggerKind = field(converter=TriggerKind)
    cron: CronSchedule | None = None
    topic: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind is TriggerKind.CRON:
            if not isinstance(self.cron, CronSchedule):
                raise ValidationFailed.field("cron", "is required for a cron trigger")
        elif self.cron is not None:
            raise ValidationFailed.field("cron", f"is only for cron triggers, not {self.kind}")
        if self.kind is TriggerKind.EVENT:
            if not isinstance(self.topic, str) or not TOPIC_RE.match(self.topic):
                raise ValidationFailed.field(
                    "topic", "is required for an event trigger: 1-200 letters, digits or . _ : / * -"
                )
        elif self.topic is not None:
            raise ValidationFailed.field("topic", f"is only for event triggers, not {self.kind}")

    @classmethod
    def manual(cls) -> Trigger:
        return cls(kind=TriggerKind.MANUAL)

    @classmethod
    def on_cron(cls, expression: str, timezone: str = "UTC") -> Trigger:
        return cls(kind=TriggerKind.CRON, cron=CronSchedule(cron=expression, timezone=timezone))

    @classmethod
    def on_event(cls, topic: str) -> Trigger:
        return cls(kind=TriggerKind.EVENT, topic=topic)


def _steps(value: Any) -> tuple[Step, ...]:
    if isinstance(value, (str, Mapping)) or not isinstance(value, Iterable):
        raise ValidationFailed.field("steps", "must be a list of steps")
    return tuple(value)


def _triggers(value: Any) -> tuple[Trigger, ...]:
    if isinstance(value, (str, Mapping)) or not isinstance(value, Iterable):
        raise ValidationFailed.field("triggers", "must be a list of triggers")
    return tuple(value)


def check_steps(steps: Sequence[Any]) -> list[FieldError]:
    """Problems of a list of steps as a whole: count, types and the graph (with ``steps[i]`` paths)."""
    if not steps:
        return [FieldError("steps", "must have at least one step")]
    if len(steps) > MAX_STEPS:
        return [FieldError("steps", f"must have at most {MAX_STEPS} steps")]
    errors = [FieldError(f"steps[{i}]", "must be a step") for i, step in enumerate(steps) if not isinstance(step, Step)]
    if errors:
        return errors
    try:
        validate_graph([step.node() for step in steps])
    except ValidationFailed as exc:
        return list(exc.errors)
    return []


def check_triggers(triggers: Sequence[Any]) -> list[FieldError]:
    if len(triggers) > MAX_TRIGGERS:
        return [FieldError("triggers", f"must have at most {MAX_TRIGGERS} triggers")]
    errors: list[FieldError] = []
    for index, trigger in enumerate(triggers):
        if not isinstance(trigger, Trigger):
            errors.append(FieldError(f"triggers[{index}]", "must be a trigger"))
        elif trigger in triggers[:index]:
            errors.append(FieldError(f"triggers[{index}]", f"repeats triggers[{triggers.index(trigger)}]"))
    return errors


@frozen(kw_only=True)
class Workflow:
    """A versioned DAG of steps with triggers; ``description`` is natural language the AI planner reads.

    With ``planner: ai`` the AI planner orders the steps (see
    :meth:`predecessors`); with ``deterministic`` only ``depends_on`` orders them.
    """

    id: WorkflowId
    tenant_id: TenantId = field(validator=non_empty_text(64))
    slug: str = field(validator=slug)
    name: str = field(validator=non_empty_text(200))
    description: str = field(default="", validator=text(10_000))
    version: int = field(default=1, validator=positive_int)
    planner: PlannerKind = field(default=PlannerKind.DETERMINISTIC, converter=PlannerKind)
    steps: tuple[Step, ...] = field(converter=_steps)
    triggers: tuple[Trigger, ...] = field(default=(), converter=_triggers)
    status: WorkflowStatus = field(default=WorkflowStatus.ACTIVE, converter=WorkflowStatus)
    created_at: datetime = field(validator=aware)
    updated_at: datetime = field(validator=aware)

    def __attrs_post_init__(self) -> None:
        errors = check_steps(self.steps) + check_triggers(self.triggers)
        if errors:
            raise ValidationFailed(errors)

    @classmethod
    def new(
        cls, *, tenant_id: TenantId, slug: str, name: str, steps: Sequence[Step], now: datetime, **fields: Any
    ) -> Workflow:
        """Version 1 of a new, active workflow."""
        return cls(
            id=WorkflowId(new_id()), tenant_id=tenant_id, slug=slug, name=name, steps=steps,
            created_at=now, updated_at=now, **fields,
        )

    def revised(self, *, now: datetime, **fields: Any) -> Workflow:
        """The next version with definition ``fields`` replaced; archived workflows are read-only.
        Runs keep the version they started with."""
        if self.status is WorkflowStatus.ARCHIVED:
            raise InvalidTransition(f"workflow {self.slug} is archived and cannot be changed")
        allowed = {"name", "description", "planner", "steps", "triggers"}
        unknown = set(fields) - allowed
        if unknown:
            raise TypeError(f"a revision cannot change {', '.join(sorted(unknown))}")
        return evolve(self, version=self.version + 1, updated_at=now, **fields)

    def archive(self, *, now: datetime) -> Workflow:
        if self.status is WorkflowStatus.ARCHIVED:
            return self
        return evolve(self, status=WorkflowStatus.ARCHIVED, updated_at=now)

    def step(self, key: str) -> Step:
        found = self._by_key.get(key)
        if found is None:
            raise NotFound("step", key)
        return found

    @cached_property
    def _by_key(self) -> dict[str, Step]:
        return {step.key: step for step in self.steps}

    @cached_property
    def _graph(self) -> RunGraph:
        return RunGraph.of(self, {step.key: frozenset(step.depends_on) for step in self.steps})

    def graph(self, plan: Plan | None = None) -> RunGraph:
        """The DAG a run follows (:meth:`predecessors`, their successors, what each step reads);
        built once per workflow version unless an AI plan binds the order."""
        if self.planner is PlannerKind.AI and plan is not None:
            return RunGraph.of(self, self.predecessors(plan))
        return self._graph

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(step.key for step in self.steps)

    def briefs(self) -> tuple[StepBrief, ...]:
        """What a planner is told about the steps."""
        return tuple(step.brief() for step in self.steps)

    def predecessors(self, plan: Plan | None = None) -> dict[str, frozenset[str]]:
        """Each step's predecessors in a run.

        ``deterministic``: its ``depends_on``; the plan's stages only describe
        the order. ``ai`` with a plan: its ``depends_on`` plus every step of the
        plan's previous stage, so the planned order binds (:func:`plan_predecessors`).
        """
        if self.planner is PlannerKind.AI and plan is not None:
            return plan_predecessors(plan, self.briefs())
        return {step.key: frozenset(step.depends_on) for step in self.steps}


@frozen(kw_only=True)
class RunGraph:
    """A run's DAG, indexed for the advance policy: each step's ``predecessors`` (declared
    order), ``successors`` (declared order), ``needs`` (what resolving it reads: its
    predecessors and the steps its ``when`` and ``inputs`` reference) and the ``sinks``
    (steps without successors: a run can only end when one of them finishes); ``position``
    is each step's index in declared order."""

    keys: tuple[str, ...]
    position: Mapping[str, int]
    predecessors: Mapping[str, tuple[str, ...]]
    successors: Mapping[str, tuple[str, ...]]
    needs: Mapping[str, frozenset[str]]
    sinks: frozenset[str]

    @classmethod
    def of(cls, workflow: Workflow, predecessors: Mapping[str, frozenset[str]]) -> RunGraph:
        keys = workflow.keys
        position = {key: index for index, key in enumerate(keys)}
        successors: dict[str, list[str]] = {key: [] for key in keys}
        for key in keys:  # declared order
            for predecessor in predecessors[key]:
                successors[predecessor].append(key)
        ordered = {key: tuple(sorted(predecessors[key], key=position.__getitem__)) for key in keys}
        needs = {
            step.key: frozenset(predecessors[step.key]) | {ref for _, ref in step.references()}
            for step in workflow.steps
        }
        return cls(
            keys=keys,
            position=position,
            predecessors=ordered,
            successors={key: tuple(found) for key, found in successors.items()},
            needs=needs,
            sinks=frozenset(key for key, found in successors.items() if not found),
        )


class MissingSteps(Exception):
    """Raised by :func:`advance`, given only some of a run's step states, when its rules need
    the states of ``keys`` too: load them and call it again with them added."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = frozenset(keys)
        super().__init__(f"the states of steps {sorted(self.keys)} are needed")


# -- runs -------------------------------------------------------------------------


def _error_text(value: str | None) -> str | None:
    if value is None:
        return None
    text_value = str(value)
    return text_value if len(text_value) <= ERROR_LIMIT else text_value[:ERROR_LIMIT]


def _check_payload(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ValidationFailed.field(attribute.name, "must be an object")
    problem = json_problem(value)
    if problem:
        raise ValidationFailed.field(attribute.name + problem[0], problem[1])


_RUN_MOVES: dict[WorkflowRunStatus, frozenset[WorkflowRunStatus]] = {
    WorkflowRunStatus.PENDING: frozenset({WorkflowRunStatus.RUNNING, WorkflowRunStatus.CANCELED}),
    WorkflowRunStatus.RUNNING: frozenset(
        {WorkflowRunStatus.SUCCEEDED, WorkflowRunStatus.FAILED, WorkflowRunStatus.CANCELED}
    ),
}


@frozen(kw_only=True)
class WorkflowRun:
    """One execution of one version of a workflow: ``input`` is the trigger's payload
    (``$.trigger`` in references), ``plan`` the plan it follows (``None`` until it starts)."""

    id: WorkflowRunId
    tenant_id: TenantId = field(validator=non_empty_text(64))
    workflow_id: WorkflowId
    workflow_version: int = field(validator=positive_int)
    status: WorkflowRunStatus = field(default=WorkflowRunStatus.PENDING, converter=WorkflowRunStatus)
    trigger: TriggerKind = field(default=TriggerKind.MANUAL, converter=TriggerKind)
    input: dict[str, Any] = field(factory=dict, validator=_check_payload)
    plan: Plan | None = None
    created_at: datetime = field(validator=aware)
    started_at: datetime | None = field(default=None, validator=aware)
    finished_at: datetime | None = field(default=None, validator=aware)
    error: str | None = field(default=None, converter=_error_text)

    @classmethod
    def new(
        cls, *, workflow: Workflow, now: datetime, input: Mapping[str, Any] | None = None,
        trigger: TriggerKind = TriggerKind.MANUAL,
    ) -> WorkflowRun:
        """A pending run of ``workflow``'s current version."""
        if workflow.status is WorkflowStatus.ARCHIVED:
            raise InvalidTransition(f"workflow {workflow.slug} is archived and cannot run")
        return cls(
            id=WorkflowRunId(new_id()), tenant_id=workflow.tenant_id, workflow_id=workflow.id,
            workflow_version=workflow.version, trigger=trigger,
            input=dict(input) if isinstance(input, Mapping) else ({} if input is None else input), created_at=now,
        )

    def _move(self, to: WorkflowRunStatus, **changes: Any) -> WorkflowRun:
        if to not in _RUN_MOVES.get(self.status, frozenset()):
            raise InvalidTransition(f"workflow run {self.id}: {self.status} -> {to}")
        return evolve(self, status=to, **changes)

    def start(self, *, at: datetime, plan: Plan) -> WorkflowRun:
        return self._move(WorkflowRunStatus.RUNNING, started_at=at, plan=plan)

    def succeed(self, *, at: datetime) -> WorkflowRun:
        return self._move(WorkflowRunStatus.SUCCEEDED, finished_at=at)

    def fail(self, *, at: datetime, error: str) -> WorkflowRun:
        return self._move(WorkflowRunStatus.FAILED, finished_at=at, error=error)

    def cancel(self, *, at: datetime, reason: str = "canceled") -> WorkflowRun:
        return self._move(WorkflowRunStatus.CANCELED, finished_at=at, error=reason)


_S = StepStatus
_STEP_MOVES: dict[StepStatus, frozenset[StepStatus]] = {
    _S.PENDING: frozenset({_S.WAITING, _S.READY, _S.SKIPPED, _S.FAILED, _S.CANCELED}),
    _S.WAITING: frozenset({_S.READY, _S.SKIPPED, _S.FAILED, _S.CANCELED}),
    _S.READY: frozenset({_S.RUNNING, _S.CANCELED}),
    _S.RUNNING: frozenset({_S.SUCCEEDED, _S.FAILED, _S.READY, _S.CANCELED}),
}


def can_move_step(current: StepStatus, to: StepStatus) -> bool:
    """True when the step state machine allows ``current -> to``."""
    return to in _STEP_MOVES.get(current, frozenset())


@frozen(kw_only=True)
class WorkflowRunStep:
    """The state of one step in one run.

    ``remaining`` counts predecessors that have not finished; ``attempt`` is
    the current attempt (1-based); ``job_run_id`` the job :class:`~domain.runs.Run`
    executing it; ``input`` the resolved inputs it was dispatched with;
    ``not_before`` the earliest time a ready step may be dispatched (a retry's
    backoff); ``skip_cause`` why it was skipped.
    """

    tenant_id: TenantId = field(validator=non_empty_text(64))
    workflow_run_id: WorkflowRunId
    step_key: str
    status: StepStatus = field(default=StepStatus.PENDING, converter=StepStatus)
    remaining: int = field(default=0, validator=non_negative_int)
    attempt: int = field(default=1, validator=positive_int)
    job_run_id: RunId | None = None
    input: dict[str, Any] | None = None
    output: Any = None
    error: str | None = field(default=None, converter=_error_text)
    skip_cause: SkipCause | None = field(default=None, converter=lambda v: None if v is None else SkipCause(v))
    not_before: datetime | None = field(default=None, validator=aware)
    started_at: datetime | None = field(default=None, validator=aware)
    finished_at: datetime | None = field(default=None, validator=aware)

    def _move(self, to: StepStatus, **changes: Any) -> WorkflowRunStep:
        if not can_move_step(self.status, to):
            raise InvalidTransition(f"step {self.step_key} of run {self.workflow_run_id}: {self.status} -> {to}")
        return evolve(self, status=to, **changes)

    def wait(self, *, remaining: int) -> WorkflowRunStep:
        """pending -> waiting for ``remaining`` (at least 1) predecessors."""
        if remaining < 1:
            raise InvalidTransition(f"step {self.step_key}: nothing to wait for")
        return self._move(StepStatus.WAITING, remaining=remaining)

    def predecessor_finished(self) -> WorkflowRunStep:
        """One fewer predecessor to wait for."""
        if self.status not in (StepStatus.PENDING, StepStatus.WAITING) or self.remaining < 1:
            raise InvalidTransition(f"step {self.step_key}: {self.status} with {self.remaining} predecessors left")
        return evolve(self, remaining=self.remaining - 1)

    def make_ready(self, *, input: Mapping[str, Any], not_before: datetime | None = None) -> WorkflowRunStep:
        """pending|waiting -> ready, once every predecessor has finished."""
        if self.remaining:
            raise InvalidTransition(f"step {self.step_key}: {self.remaining} predecessors have not finished")
        return self._move(StepStatus.READY, input=dict(input), not_before=not_before)

    def start(self, *, at: datetime, job_run_id: RunId) -> WorkflowRunStep:
        """ready -> running in job run ``job_run_id``."""
        return self._move(StepStatus.RUNNING, job_run_id=job_run_id, started_at=self.started_at or at)

    def rerun(self, *, job_run_id: RunId, attempt: int) -> WorkflowRunStep:
        """running -> running in another job run: the engine retried the step's job run under
        the step's retry policy (``attempt`` is the retry's)."""
        if self.status is not StepStatus.RUNNING:
            raise InvalidTransition(
                f"step {self.step_key} of run {self.workflow_run_id}: {self.status}; only a running step is retried"
            )
        return evolve(self, job_run_id=job_run_id, attempt=attempt)

    def succeed(self, *, at: datetime, output: Any = None) -> WorkflowRunStep:
        return self._move(StepStatus.SUCCEEDED, output=output, error=None, finished_at=at)

    def fail(self, *, at: datetime, error: str) -> WorkflowRunStep:
        """running -> failed (its last attempt failed), or waiting|pending -> failed (its
        condition or inputs could not be read)."""
        return self._move(StepStatus.FAILED, output=None, error=error, finished_at=at)

    def retry(self, *, at: datetime, error: str, not_before: datetime) -> WorkflowRunStep:
        """running -> ready for the next attempt, not before ``not_before``."""
        if not_before < at:
            raise ValidationFailed.field("not_before", "must not be before the failure")
        return self._move(StepStatus.READY, attempt=self.attempt + 1, job_run_id=None, error=error, not_before=not_before)

    def skip(self, *, at: datetime, cause: SkipCause, reason: str) -> WorkflowRunStep:
        return self._move(StepStatus.SKIPPED, skip_cause=cause, error=reason, finished_at=at)

    def cancel(self, *, at: datetime, reason: str) -> WorkflowRunStep:
        return self._move(StepStatus.CANCELED, error=reason, finished_at=at)


def pending_steps(workflow: Workflow, run: WorkflowRun) -> tuple[WorkflowRunStep, ...]:
    """One pending step state per step of ``workflow``, in declared order, for a new run."""
    if workflow.id != run.workflow_id or workflow.version != run.workflow_version:
        raise ValidationFailed.field("workflow_version", "the run belongs to another workflow or version")
    return tuple(
        WorkflowRunStep(tenant_id=run.tenant_id, workflow_run_id=run.id, step_key=key) for key in workflow.keys
    )


# -- the advance policy -------------------------------------------------------------


@frozen(kw_only=True)
class StepOutcome:
    """How one attempt of a step ended: ``succeeded`` with ``output``, or not, with ``error``.
    ``job_run_id``, when given, must be the step's current job run (else the outcome is stale).
    ``may_retry`` is False when the engine already retried the job run under the step's retry
    policy, so the failure is final here."""

    key: str
    succeeded: bool
    at: datetime = field(validator=aware)
    output: Any = None
    error: str | None = None
    job_run_id: RunId | None = None
    may_retry: bool = True


@frozen(kw_only=True)
class Advance:
    """The result of a policy call: the run and all its steps (declared order; those given, when
    :func:`advance` was given some), the keys whose state changed, the keys now ready to
    dispatch, and job runs the orchestrator should cancel."""

    run: WorkflowRun
    steps: tuple[WorkflowRunStep, ...]
    changed: tuple[str, ...] = ()
    ready: tuple[str, ...] = ()
    cancel_runs: tuple[RunId, ...] = ()

    def step(self, key: str) -> WorkflowRunStep:
        for state in self.steps:
            if state.step_key == key:
                return state
        raise NotFound("step", key)

    @property
    def changed_steps(self) -> tuple[WorkflowRunStep, ...]:
        keys = set(self.changed)
        return tuple(state for state in self.steps if state.step_key in keys)


def run_context(run: WorkflowRun, steps: Iterable[WorkflowRunStep]) -> dict[str, Any]:
    """What conditions and references read: the trigger payload and every finished step's
    ``status``, ``output`` (``None`` unless it succeeded) and ``error``."""
    return {
        "trigger": run.input,
        "steps": {
            state.step_key: {"status": str(state.status), "output": state.output, "error": state.error}
            for state in steps
            if state.status.final
        },
    }


class _Progress:
    """A mutable working copy of one run while a policy call applies its rules.

    ``steps`` may be a subset of the run's steps (``complete=False``): a rule that needs a
    state not given raises :class:`MissingSteps`, and the caller calls again with more."""

    def __init__(
        self, workflow: Workflow, run: WorkflowRun, steps: Sequence[WorkflowRunStep], *, complete: bool = True,
        graph: RunGraph | None = None,
    ) -> None:
        if workflow.id != run.workflow_id or workflow.version != run.workflow_version:
            raise ValidationFailed.field("workflow_version", "the run belongs to another workflow or version")
        states = {state.step_key: state for state in steps}
        if len(states) != len(steps) or (
            set(states) != set(workflow.keys) if complete else not states.keys() <= workflow._by_key.keys()
        ):
            raise ValidationFailed.field("steps", "must hold exactly one state per step of the workflow")
        self.workflow = workflow
        self.run = run
        self.states = states
        self.graph = graph if graph is not None else workflow.graph(run.plan)
        self.changed: dict[str, None] = {}
        self.cancel_runs: list[RunId] = []

    def state(self, key: str) -> WorkflowRunStep:
        found = self.states.get(key)
        if found is None:
            raise MissingSteps([key])
        return found

    def require(self, keys: Iterable[str]) -> None:
        missing = [key for key in keys if key not in self.states]
        if missing:
            raise MissingSteps(missing)

    def set(self, state: WorkflowRunStep) -> None:
        self.states[state.step_key] = state
        self.changed[state.step_key] = None

    def result(self) -> Advance:
        order = self.graph.position.__getitem__
        changed = tuple(sorted(self.changed, key=order))
        return Advance(
            run=self.run,
            steps=tuple(self.states[key] for key in sorted(self.states, key=order)),
            changed=changed,
            ready=tuple(k for k in changed if self.states[k].status is StepStatus.READY),
            cancel_runs=tuple(self.cancel_runs),
        )

    # -- the rules ------------------------------------------------------------------

    def finished(self, key: str, at: datetime) -> None:
        """``key`` reached a final state: apply a halting failure, else count it off its
        successors and resolve each one left with nothing to wait for; repeat for any
        successor that finishes on the spot (skipped, or failed on its condition or inputs)."""
        queue = [key]
        while queue and not self.run.status.final:
            current = queue.pop(0)
            state = self.state(current)
            if state.status is StepStatus.FAILED and self.workflow.step(current).on_failure is OnFailure.HALT:
                self.halt(current, at)
                return
            successors = self.graph.successors[current]
            self.require(successors)
            for successor in successors:
                following = self.states[successor]
                if following.status.final:
                    continue
                following = following.predecessor_finished()
                self.set(following)
                if following.remaining == 0 and self.resolve(successor, at):
                    queue.append(successor)
        self.settle(at)

    def resolve(self, key: str, at: datetime) -> bool:
        """Decide a step whose predecessors have all finished; True when it finished on the spot."""
        self.require(self.graph.needs[key])
        step = self.workflow.step(key)
        predecessors = self.graph.predecessors[key]
        state = self.states[key]
        blocked = [p for p in predecessors if self.blocks(p)]
        if blocked:
            self.set(state.skip(at=at, cause=SkipCause.UPSTREAM_FAILED, reason=f"upstream step {blocked[0]!r} " + (
                "failed" if self.states[blocked[0]].status is StepStatus.FAILED else "was skipped after a failure"
            )))
            return True
        if predecessors and not any(self.proceeds(p) for p in predecessors):
            self.set(state.skip(at=at, cause=SkipCause.NO_BRANCH, reason="every predecessor was skipped"))
            return True
        if step.when is None and not step.inputs:
            self.set(state.make_ready(input={}))
            return False
        context = run_context(self.run, (self.states[k] for k in self.graph.needs[key]))
        try:
            if step.when is not None and not step.when.evaluate(context):
                self.set(state.skip(at=at, cause=SkipCause.CONDITION, reason=f"condition is false: {step.when.source}"))
                return True
        except ExpressionError as exc:
            self.set(state.fail(at=at, error=f"when: {exc}"))
            return True
        try:
            inputs = step.resolve_inputs(context)
        except ExpressionError as exc:
            self.set(state.fail(at=at, error=str(exc)))
            return True
        self.set(state.make_ready(input=inputs))
        return False

    def blocks(self, key: str) -> bool:
        """A finished predecessor that skips its dependents: failed with ``skip``, or skipped
        because of an upstream failure."""
        state = self.states[key]
        if state.status is StepStatus.FAILED:
            return self.workflow.step(key).on_failure is OnFailure.SKIP
        return state.status is StepStatus.SKIPPED and state.skip_cause is SkipCause.UPSTREAM_FAILED

    def proceeds(self, key: str) -> bool:
        """A finished predecessor its dependents run after: succeeded, or failed with ``continue``."""
        state = self.states[key]
        if state.status is StepStatus.SUCCEEDED:
            return True
        return state.status is StepStatus.FAILED and self.workflow.step(key).on_failure is OnFailure.CONTINUE

    def halt(self, key: str, at: datetime) -> None:
        self.require(self.graph.keys)
        error = self.states[key].error or "failed"
        reason = f"the run halted: step {key!r} failed"
        for other in self.graph.keys:
            state = self.states[other]
            if state.status.final:
                continue
            if state.status is StepStatus.RUNNING and state.job_run_id is not None:
                self.cancel_runs.append(state.job_run_id)
            self.set(state.cancel(at=at, reason=reason))
        self.run = self.run.fail(at=at, error=f"step {key!r} failed: {error}")

    def settle(self, at: datetime) -> None:
        """A running run whose steps have all finished succeeds (a halt has already failed it).
        A step finishes only after its predecessors, so the last to finish is a sink: unless a
        sink finished in this call, the run cannot have ended, and the other steps are not read."""
        if self.run.status is not WorkflowRunStatus.RUNNING:
            return
        if len(self.states) < len(self.graph.keys):
            if not any(k in self.graph.sinks and self.states[k].status.final for k in self.changed):
                return
            self.require(self.graph.keys)
        if all(s.status.final for s in self.states.values()):
            self.run = self.run.succeed(at=at)


def start_run(
    workflow: Workflow, run: WorkflowRun, steps: Sequence[WorkflowRunStep], *, plan: Plan, at: datetime
) -> Advance:
    """Start a pending run on ``plan``: steps with predecessors wait for them (``remaining`` set);
    the others are resolved at once as :func:`advance` describes (ready, skipped or failed)."""
    progress = _Progress(workflow, run.start(at=at, plan=plan), steps)
    for state in steps:
        if state.status is not StepStatus.PENDING:
            raise InvalidTransition(f"step {state.step_key} of run {run.id} is {state.status}, not pending")
    predecessors = progress.graph.predecessors
    for key in workflow.keys:
        count = len(predecessors[key])
        if count:
            progress.set(progress.states[key].wait(remaining=count))
    for key in workflow.keys:
        if progress.run.status.final:
            break
        if not predecessors[key] and progress.resolve(key, at):
            progress.finished(key, at)
    progress.settle(at)
    return progress.result()


def advance(
    workflow: Workflow, run: WorkflowRun, steps: Sequence[WorkflowRunStep], outcome: StepOutcome, *, rand: float = 1.0,
    complete: bool = True, graph: RunGraph | None = None,
) -> Advance:
    """Apply one step's outcome and everything that follows from it.

    ``steps`` holds every step's state, or with ``complete=False`` only some of them: then
    the result's ``steps`` are those given (updated), and a rule that needs another state
    raises :class:`MissingSteps` naming the states to add. The outcome's own step, its
    successors, and what a successor left with nothing to wait for reads (its predecessors
    and the steps its ``when`` and ``inputs`` reference) are what a step's end usually
    needs; a halt, or a sink's end, needs them all. ``graph`` is ``workflow.graph(run.plan)``,
    for a caller that keeps it.

    The rules, in order:

    1. **Stale or late outcomes change nothing**: the run has finished, the step has
       finished (a duplicate message, or it was canceled), or ``outcome.job_run_id``
       is not the step's current job run. An outcome for a step that is not running
       raises ``InvalidTransition``.
    2. **Retry**: a failed attempt the step's retry policy allows another of sends the
       step back to ``ready`` with ``attempt + 1`` and ``not_before`` = now + the policy's
       backoff (``rand`` in [0, 1] picks the jitter). Nothing else moves. An outcome with
       ``may_retry=False`` (the engine already retried) skips this rule.
    3. **Finish**: otherwise the step succeeds (keeping ``output``) or fails.
    4. **Halt**: a failed step with ``on_failure: halt`` fails the run; every step that
       has not finished is canceled, running ones too (their job runs are listed in
       ``cancel_runs``).
    5. **Count off**: each successor's ``remaining`` drops by one; a join waits until
       it reaches 0, whatever its predecessors' outcomes.
    6. **Resolve** a successor with nothing left to wait for:

       a. a predecessor *blocks* (failed with ``on_failure: skip``, or was skipped
          with cause ``upstream-failed``) -> skipped, ``upstream-failed``. So a
          ``skip`` failure skips every step downstream of it, transitively;
       b. no predecessor *proceeds* (succeeded, or failed with ``on_failure: continue``,
          whose output is then null) -> skipped, ``no-branch``: every branch into it
          was skipped by a condition. A join after a conditional branch runs when at
          least one branch ran;
       c. its ``when`` is false -> skipped, ``condition``; a ``when`` that cannot be
          evaluated (a missing key) -> failed;
       d. its inputs cannot be resolved -> failed;
       e. otherwise -> ready, with its resolved ``input``.

       A step that fails in (c) or (d) applies its own ``on_failure`` (4-6), and a
       step skipped here counts off its successors in turn (5-6).
    7. **Final status**: when every step has finished and no halt happened, the run
       succeeds; failures handled by ``skip`` or ``continue`` do not fail it.
    """
    progress = _Progress(workflow, run, steps, complete=complete, graph=graph)
    if outcome.key not in workflow._by_key:
        raise NotFound("step", outcome.key)
    state = progress.state(outcome.key)
    stale = outcome.job_run_id is not None and outcome.job_run_id != state.job_run_id
    if run.status.final or state.status.final or stale:
        return progress.result()
    if state.status is not StepStatus.RUNNING:
        raise InvalidTransition(f"step {outcome.key} of run {run.id} is {state.status}; it has no outcome to report")
    at = outcome.at
    if outcome.succeeded:
        progress.set(state.succeed(at=at, output=outcome.output))
    else:
        error = outcome.error or "failed"
        policy = workflow.step(outcome.key).retry
        if outcome.may_retry and policy.allows_another(state.attempt):
            progress.set(state.retry(at=at, error=error, not_before=at + policy.delay(state.attempt, rand=rand)))
            return progress.result()
        progress.set(state.fail(at=at, error=error))
    progress.finished(outcome.key, at)
    return progress.result()


def cancel_run(
    run: WorkflowRun, steps: Sequence[WorkflowRunStep], *, at: datetime, reason: str = "canceled"
) -> Advance:
    """Cancel a pending or running run and every step that has not finished; running steps'
    job runs are listed in ``cancel_runs``."""
    canceled = run.cancel(at=at, reason=reason)
    changed: list[str] = []
    cancel_runs: list[RunId] = []
    result: list[WorkflowRunStep] = []
    for state in steps:
        if not state.status.final:
            if state.status is StepStatus.RUNNING and state.job_run_id is not None:
                cancel_runs.append(state.job_run_id)
            state = state.cancel(at=at, reason=reason)
            changed.append(state.step_key)
        result.append(state)
    return Advance(run=canceled, steps=tuple(result), changed=tuple(changed), cancel_runs=tuple(cancel_runs))
