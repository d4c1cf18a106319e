"""Planning: the order in which a workflow run's steps execute.

A :class:`Plan` is a sequence of stages; the steps of one stage may run in
parallel, and a stage starts after the stages before it. A :class:`Planner`
turns a goal (the workflow's description) and the steps' briefs into a plan.
The :class:`DeterministicPlanner` (topological layers, declared order as the
tie-break) is the default and the fallback; an AI planner (an adapter) may
order steps that declare no dependencies by reading their descriptions.

Whatever a planner answers passes :func:`validate_plan` before it is used:
every step exactly once, nothing unknown, and every explicit dependency in an
earlier stage. :func:`plan_with_fallback` calls a planner, validates its plan,
and on any failure returns the deterministic plan with ``fallback_reason``
saying why, so a run always has a plan and its record says where it came from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from attrs import field, frozen

from domain.dag import layers
from domain.errors import FieldError, ValidationFailed

DETERMINISTIC = "deterministic"
RATIONALE_LIMIT = 4000
REASON_LIMIT = 1000


def _stages(value: Iterable[Iterable[str]]) -> tuple[tuple[str, ...], ...]:
    if isinstance(value, (str, bytes)):
        raise ValidationFailed.field("stages", "must be a list of lists of step keys")
    result: list[tuple[str, ...]] = []
    for index, stage in enumerate(value):
        if isinstance(stage, (str, bytes)) or not isinstance(stage, Iterable):
            raise ValidationFailed.field(f"stages[{index}]", "must be a list of step keys")
        keys = tuple(stage)
        for position, key in enumerate(keys):
            if not isinstance(key, str):
                raise ValidationFailed.field(f"stages[{index}][{position}]", "must be a step key (a string)")
        result.append(keys)
    return tuple(result)


def _bounded(limit: int):
    def convert(value: str | None) -> str | None:
        if value is None:
            return None
        text = str(value)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    return convert


@frozen(kw_only=True)
class Plan:
    """Stages of step keys, the planner's ``rationale``, the ``planner`` that made it, and
    ``fallback_reason`` when the deterministic plan replaced another planner's answer."""

    stages: tuple[tuple[str, ...], ...] = field(converter=_stages)
    rationale: str = field(default="", converter=_bounded(RATIONALE_LIMIT))
    planner: str = DETERMINISTIC
    fallback_reason: str | None = field(default=None, converter=_bounded(REASON_LIMIT))

    @property
    def keys(self) -> tuple[str, ...]:
        """Every step key, stage by stage."""
        return tuple(key for stage in self.stages for key in stage)

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON-shaped data (``stages`` as lists), for records and the API."""
        return {
            "stages": [list(stage) for stage in self.stages],
            "rationale": self.rationale,
            "planner": self.planner,
            "fallback_reason": self.fallback_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """The inverse of :meth:`as_dict`."""
        return cls(
            stages=data["stages"],
            rationale=data.get("rationale") or "",
            planner=data.get("planner") or DETERMINISTIC,
            fallback_reason=data.get("fallback_reason"),
        )


@frozen(kw_only=True)
class StepBrief:
    """What a planner is told about a step: its key, natural-language description and explicit
    dependencies (which any plan must honour)."""

    key: str
    description: str = ""
    depends_on: tuple[str, ...] = field(default=(), converter=tuple)


class Planner(Protocol):
    """Orders a workflow's steps into stages.

    ``plan`` may fail (raise) or answer nonsense: callers go through
    :func:`plan_with_fallback`, which validates the answer and falls back to
    the deterministic plan.
    """

    name: str

    async def plan(self, goal: str, steps: Sequence[StepBrief]) -> Plan: ...


def deterministic_plan(steps: Sequence[StepBrief], *, fallback_reason: str | None = None) -> Plan:
    """Topological layers of the explicit dependencies, declared order within a layer.
    Raises ``ValidationFailed`` when the dependencies form a cycle or name an unknown step."""
    stages = layers({step.key: step.depends_on for step in steps})
    return Plan(
        stages=stages,
        rationale="topological layers of the declared dependencies; declared order within a stage",
        planner=DETERMINISTIC,
        fallback_reason=fallback_reason,
    )


class DeterministicPlanner:
    """The default planner: :func:`deterministic_plan`. Pure; never fails on a valid graph."""

    name = DETERMINISTIC

    async def plan(self, goal: str, steps: Sequence[StepBrief]) -> Plan:
        return deterministic_plan(steps)


def plan_errors(plan: Plan, steps: Sequence[StepBrief]) -> list[FieldError]:
    """Every problem with ``plan`` for ``steps``, each with its path in the plan."""
    errors: list[FieldError] = []
    known = {step.key: step for step in steps}
    placed: dict[str, tuple[int, int]] = {}
    for index, stage in enumerate(plan.stages):
        if not stage:
            errors.append(FieldError(f"stages[{index}]", "is empty"))
        for position, key in enumerate(stage):
            path = f"stages[{index}][{position}]"
            if key not in known:
                errors.append(FieldError(path, f"unknown step {key!r}"))
            elif key in placed:
                first = placed[key]
                errors.append(FieldError(path, f"step {key!r} appears twice (also stages[{first[0]}][{first[1]}])"))
            else:
                placed[key] = (index, position)
    for step in steps:
        if step.key not in placed:
            errors.append(FieldError("stages", f"step {step.key!r} is missing"))
            continue
        stage, position = placed[step.key]
        for dependency in step.depends_on:
            if dependency in placed and placed[dependency][0] >= stage:
                errors.append(
                    FieldError(
                        f"stages[{stage}][{position}]",
                        f"step {step.key!r} depends on {dependency!r}, which is not in an earlier stage "
                        f"(it is in stages[{placed[dependency][0]}])",
                    )
                )
    return errors


def validate_plan(plan: Plan, steps: Sequence[StepBrief]) -> None:
    """Raise ``ValidationFailed`` unless ``plan`` holds every step exactly once, names no other
    step, has no empty stage, and puts each explicit dependency in an earlier stage."""
    errors = plan_errors(plan, steps)
    if errors:
        raise ValidationFailed(errors)


async def plan_with_fallback(
    planner: Planner, goal: str, steps: Sequence[StepBrief], *, timeout_s: float | None = None
) -> Plan:
    """``planner``'s plan when it answers a valid one (within ``timeout_s`` seconds, if given);
    otherwise the deterministic plan, its ``fallback_reason`` naming the failure.

    The deterministic plan of ``steps`` is computed first, so a graph that is
    itself invalid raises ``ValidationFailed`` rather than falling back.
    Cancellation is never swallowed.
    """
    fallback = deterministic_plan(steps)
    if isinstance(planner, DeterministicPlanner):
        return fallback
    name = getattr(planner, "name", type(planner).__name__)
    try:
        if timeout_s is None:
            plan = await planner.plan(goal, steps)
        else:
            async with asyncio.timeout(timeout_s):
                plan = await planner.plan(goal, steps)
    except TimeoutError:
        return _fallback(fallback, f"the {name} planner did not answer within {timeout_s:g}s")
    except Exception as exc:  # noqa: BLE001 - any failure of a planner means the fallback
        return _fallback(fallback, f"the {name} planner failed: {_describe(exc)}")
    if not isinstance(plan, Plan):
        return _fallback(fallback, f"the {name} planner answered {type(plan).__name__}, not a plan")
    errors = plan_errors(plan, steps)
    if errors:
        listed = "; ".join(f"{e.path}: {e.message}" for e in errors)
        return _fallback(fallback, f"the {name} planner's plan was invalid: {listed}")
    return plan


def _fallback(plan: Plan, reason: str) -> Plan:
    return Plan(stages=plan.stages, rationale=plan.rationale, planner=plan.planner, fallback_reason=reason)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def plan_predecessors(plan: Plan, steps: Sequence[StepBrief]) -> dict[str, frozenset[str]]:
    """Each step's predecessors when the plan's order is binding (an AI-planned workflow): its
    explicit dependencies plus every step of the previous stage. ``plan`` must be valid for
    ``steps``. The result is acyclic: every predecessor sits in an earlier stage."""
    previous: dict[str, frozenset[str]] = {}
    before: frozenset[str] = frozenset()
    for stage in plan.stages:
        for key in stage:
            previous[key] = before
        before = frozenset(stage)
    return {step.key: frozenset(step.depends_on) | previous.get(step.key, frozenset()) for step in steps}
