"""Workflow definitions in the public vocabulary, parsed into domain values and back.

A definition is a JSON-shaped mapping::

    {"slug": "nightly-billing", "name": "Nightly billing", "description": "...",
     "planner": "deterministic",
     "steps": [{"key": "fetch", "description": "...", "target": {"kind": "endpoint", "endpoint_id": "..."},
                "depends_on": [], "when": "trigger.region == 'eu'", "inputs": {"customer": "$.trigger.customer_id"},
                "retry": {"max_attempts": 3, "backoff_s": 5, "backoff_max_s": 60, "jitter": true},
                "on_failure": "halt", "timeout_s": 300}],
     "triggers": [{"kind": "cron", "cron": "0 2 * * *", "timezone": "Europe/Berlin"},
                  {"kind": "event", "topic": "invoices.imported"}, {"kind": "manual"}]}

:func:`workflow_fields` collects every problem, each with its path
(``steps[2].depends_on[0]``, ``steps[1].retry.backoff_s``, ``triggers[0].cron``),
so a bad definition is refused whole; :func:`workflow_spec` writes a workflow
back in the same vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from domain.conditions import Condition, is_reference, parse_condition, parse_reference
from domain.dag import Node, graph_errors
from domain.errors import FieldError, ValidationFailed
from domain.schedules import CronSchedule
from domain.specs import parse_retry, parse_target, seconds, with_api_paths
from domain.targets import HttpTarget
from domain.workflows import (
    MAX_STEPS,
    MAX_TRIGGERS,
    EndpointRef,
    OnFailure,
    PlannerKind,
    Step,
    StepTarget,
    Trigger,
    TriggerKind,
    Workflow,
    input_errors,
)

WORKFLOW_FIELDS = ("slug", "name", "description", "planner", "steps", "triggers")
STEP_FIELDS = (
    "key", "description", "target", "depends_on", "when", "inputs", "retry", "on_failure", "timeout_s",
)
TRIGGER_FIELDS = ("kind", "cron", "timezone", "topic")


class _Errors:
    """Collects field errors so one refusal lists them all."""

    def __init__(self) -> None:
        self.list: list[FieldError] = []

    def run(self, path: str, build: Callable[[], Any]) -> Any:
        """``build()``, or ``None`` after recording its errors under ``path``."""
        try:
            return build()
        except ValidationFailed as exc:
            self.list.extend(error.prefixed(path) if path else error for error in exc.errors)
        except (TypeError, ValueError) as exc:
            self.list.append(FieldError(path, str(exc)))
        return None

    def add(self, path: str, message: str) -> None:
        self.list.append(FieldError(path, message))

    def __len__(self) -> int:
        return len(self.list)


def _unknown(spec: Mapping[str, Any], allowed: tuple[str, ...], prefix: str, errors: _Errors) -> None:
    for key in spec:
        if key not in allowed:
            errors.add(f"{prefix}{key}", "is not a known field")


def _list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _named(key: Any, build: Callable[[], Any]) -> Any:
    """``build()``; its errors' messages name the step ``key``, so a refused condition says where it is."""
    try:
        return build()
    except ValidationFailed as exc:
        if not isinstance(key, str):
            raise
        raise ValidationFailed([FieldError(e.path, f"{e.message} (step {key!r})") for e in exc.errors]) from None


def parse_step_target(spec: Any) -> StepTarget:
    """``{"kind": "endpoint", "endpoint_id"}``, or an http or python target as for endpoints."""
    if not isinstance(spec, Mapping):
        raise ValidationFailed.field("", "must be an object")
    kind = spec.get("kind")
    if kind == "endpoint":
        extra = [k for k in spec if k not in ("kind", "endpoint_id")]
        if extra:
            raise ValidationFailed.field(extra[0], "is not a known field")
        if not isinstance(spec.get("endpoint_id"), str):
            raise ValidationFailed.field("endpoint_id", "is required (an endpoint id)")
        return EndpointRef(endpoint_id=spec["endpoint_id"])
    if kind in ("http", "python"):
        return parse_target(spec)
    raise ValidationFailed.field("kind", "must be 'endpoint', 'http' or 'python'")


def parse_trigger(spec: Any) -> Trigger:
    """``{"kind": "manual"}``, ``{"kind": "cron", "cron", "timezone"}`` or ``{"kind": "event", "topic"}``."""
    if not isinstance(spec, Mapping):
        raise ValidationFailed.field("", "must be an object")
    kind = spec.get("kind")
    if kind not in tuple(TriggerKind):
        raise ValidationFailed.field("kind", "must be 'manual', 'cron' or 'event'")
    allowed = {"manual": ("kind",), "cron": ("kind", "cron", "timezone"), "event": ("kind", "topic")}[kind]
    extra = [k for k in spec if k not in allowed]
    if extra:
        raise ValidationFailed.field(extra[0], f"is not a known field for a {kind} trigger")
    if kind == "cron":
        if spec.get("cron") is None:
            raise ValidationFailed.field("cron", "is required for a cron trigger")
        return Trigger(kind=TriggerKind.CRON, cron=CronSchedule(cron=spec["cron"], timezone=spec.get("timezone") or "UTC"))
    if kind == "event":
        return Trigger(kind=TriggerKind.EVENT, topic=spec.get("topic"))
    return Trigger.manual()


def _parse_step(spec: Any, errors: _Errors, prefix: str) -> tuple[Step | None, Node | None]:
    """The step at ``prefix`` (``steps[2]``), and what the graph checks need of it even when
    other fields are broken."""
    if not isinstance(spec, Mapping):
        errors.add(prefix, "must be an object")
        return None, None
    before = len(errors)
    _unknown(spec, STEP_FIELDS, f"{prefix}.", errors)
    fields: dict[str, Any] = {}
    key = spec.get("key")
    if key is None:
        errors.add(f"{prefix}.key", "is required")
    if spec.get("target") is None:
        errors.add(f"{prefix}.target", "is required")
    else:
        fields["target"] = errors.run(f"{prefix}.target", lambda: parse_step_target(spec["target"]))
    depends_on: list[str] = []
    raw_depends = spec.get("depends_on")
    if raw_depends is not None:
        if not _list(raw_depends):
            errors.add(f"{prefix}.depends_on", "must be a list of step keys")
        else:
            for index, item in enumerate(raw_depends):
                if isinstance(item, str):
                    depends_on.append(item)
                else:
                    errors.add(f"{prefix}.depends_on[{index}]", "must be a step key (a string)")
        fields["depends_on"] = tuple(depends_on)
    condition: Condition | None = None
    if spec.get("when") is not None:
        condition = errors.run(prefix, lambda: _named(key, lambda: parse_condition(spec["when"], path="when")))
        fields["when"] = condition
    references: list[tuple[str, str]] = []
    if condition is not None:
        references.extend(("when", step) for step in sorted(condition.steps))
    inputs = spec.get("inputs")
    if inputs is not None:
        errors.list.extend(error.prefixed(prefix) for error in input_errors(inputs))
        if isinstance(inputs, Mapping):
            for name, value in inputs.items():
                if is_reference(value):
                    try:
                        found = parse_reference(value)
                    except ValidationFailed:
                        continue
                    if found.step is not None:
                        references.append((f"inputs.{name}", found.step))
            fields["inputs"] = dict(inputs)
    if spec.get("retry") is not None:
        fields["retry"] = errors.run(f"{prefix}.retry", lambda: parse_retry(spec["retry"]))
    if spec.get("on_failure") is not None:
        if spec["on_failure"] in tuple(OnFailure):
            fields["on_failure"] = OnFailure(spec["on_failure"])
        else:
            errors.add(f"{prefix}.on_failure", "must be 'halt', 'skip' or 'continue'")
    if spec.get("timeout_s") is not None:
        fields["timeout"] = errors.run(prefix, lambda: seconds(spec["timeout_s"], "timeout_s"))
    if spec.get("description") is not None:
        fields["description"] = spec["description"]
    if key is not None:
        fields["key"] = key
    # each field's own rules (key format, description length, inputs, timeout bound)
    attributes = attrs.fields_dict(Step)
    reported = {error.path for error in errors.list[before:]}
    for name in ("key", "description", "timeout"):
        api = f"{prefix}.{'timeout_s' if name == 'timeout' else name}"
        if name in fields and fields[name] is not None and not any(p == api or p.startswith(api + ".") for p in reported):
            attribute = attributes[name]
            errors.run(prefix, lambda a=attribute, v=fields[name]: with_api_paths(lambda: a.validator(None, a, v)))
    node = Node(key=key, depends_on=tuple(depends_on), references=tuple(references)) if isinstance(key, str) else None
    if len(errors) > before:
        return None, node
    step = errors.run(prefix, lambda: with_api_paths(lambda: Step(**fields)))
    return step, node


def workflow_fields(spec: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Entity fields from a workflow definition; raises ``ValidationFailed`` listing every bad field.

    With ``partial`` (a revision that changes some fields), only the given fields are parsed
    and none is required; ``steps`` given are checked as a whole graph.
    """
    if not isinstance(spec, Mapping):
        raise ValidationFailed.field("", "must be an object")
    errors = _Errors()
    _unknown(spec, WORKFLOW_FIELDS, "", errors)
    if not partial:
        for required in ("slug", "name", "steps"):
            if spec.get(required) is None:
                errors.add(required, "is required")
    fields: dict[str, Any] = {}
    for key in ("slug", "name", "description"):
        if key in spec:
            fields[key] = "" if key == "description" and spec[key] is None else spec[key]
    if spec.get("planner") is not None:
        if spec["planner"] in tuple(PlannerKind):
            fields["planner"] = PlannerKind(spec["planner"])
        else:
            errors.add("planner", "must be 'deterministic' or 'ai'")
    if spec.get("steps") is not None:
        fields["steps"] = _parse_steps(spec["steps"], errors)
    if "triggers" in spec:
        fields["triggers"] = _parse_triggers(spec["triggers"] or [], errors)
    attributes = attrs.fields_dict(Workflow)
    for name in ("slug", "name", "description"):
        if name in fields:
            errors.run("", lambda a=attributes[name], v=fields[name]: a.validator(None, a, v))
    if errors.list:
        raise ValidationFailed(errors.list)
    return fields


def _parse_steps(value: Any, errors: _Errors) -> tuple[Step, ...] | None:
    if not _list(value):
        errors.add("steps", "must be a list of steps")
        return None
    if not value:
        errors.add("steps", "must have at least one step")
        return None
    if len(value) > MAX_STEPS:
        errors.add("steps", f"must have at most {MAX_STEPS} steps")
        return None
    parsed = [_parse_step(item, errors, f"steps[{index}]") for index, item in enumerate(value)]
    errors.list.extend(graph_errors([node for _, node in parsed]))
    steps = [step for step, _ in parsed]
    return tuple(steps) if all(step is not None for step in steps) else None  # type: ignore[arg-type]


def _parse_triggers(value: Any, errors: _Errors) -> tuple[Trigger, ...] | None:
    if not _list(value):
        errors.add("triggers", "must be a list of triggers")
        return None
    triggers: list[Trigger | None] = []
    for index, item in enumerate(value):
        prefix = f"triggers[{index}]"
        if isinstance(item, Mapping):
            _unknown(item, TRIGGER_FIELDS, f"{prefix}.", errors)
            item = {k: v for k, v in item.items() if k in TRIGGER_FIELDS}
        triggers.append(errors.run(prefix, lambda i=item: parse_trigger(i)))
    for index, trigger in enumerate(triggers):
        if trigger is not None and trigger in triggers[:index]:
            errors.add(f"triggers[{index}]", f"repeats triggers[{triggers.index(trigger)}]")
    if len(triggers) > MAX_TRIGGERS:
        errors.add("triggers", f"must have at most {MAX_TRIGGERS} triggers")
    if any(trigger is None for trigger in triggers) or len(triggers) > MAX_TRIGGERS:
        return None
    return tuple(triggers)  # type: ignore[arg-type]


def build_workflow(make: Callable[..., Workflow], fields: Mapping[str, Any]) -> Workflow:
    """Call ``make(**fields)`` and report entity-level errors with the API's field names."""
    return with_api_paths(lambda: make(**fields))


def step_target_spec(target: StepTarget) -> dict[str, Any]:
    if isinstance(target, EndpointRef):
        return {"kind": "endpoint", "endpoint_id": target.endpoint_id}
    if isinstance(target, HttpTarget):
        return {
            "kind": "http", "method": target.method, "url": target.url,
            "headers": dict(target.headers), "body": target.body,
        }
    return {"kind": "python", "handler": target.handler, "params": dict(target.params)}


def trigger_spec(trigger: Trigger) -> dict[str, Any]:
    if trigger.kind is TriggerKind.CRON and trigger.cron is not None:
        return {"kind": "cron", "cron": trigger.cron.cron, "timezone": trigger.cron.timezone}
    if trigger.kind is TriggerKind.EVENT:
        return {"kind": "event", "topic": trigger.topic}
    return {"kind": "manual"}


def step_spec(step: Step) -> dict[str, Any]:
    return {
        "key": step.key,
        "description": step.description,
        "target": step_target_spec(step.target),
        "depends_on": list(step.depends_on),
        "when": step.when.source if step.when is not None else None,
        "inputs": dict(step.inputs),
        "retry": {
            "max_attempts": step.retry.max_attempts,
            "backoff_s": step.retry.backoff.total_seconds(),
            "backoff_max_s": step.retry.backoff_max.total_seconds(),
            "jitter": step.retry.jitter,
        },
        "on_failure": str(step.on_failure),
        "timeout_s": step.timeout.total_seconds() if step.timeout is not None else None,
    }


def workflow_spec(workflow: Workflow) -> dict[str, Any]:
    """The definition of ``workflow`` in the public vocabulary; :func:`workflow_fields` reads it back."""
    return {
        "slug": workflow.slug,
        "name": workflow.name,
        "description": workflow.description,
        "planner": str(workflow.planner),
        "steps": [step_spec(step) for step in workflow.steps],
        "triggers": [trigger_spec(trigger) for trigger in workflow.triggers],
    }


def steps_from(spec: Sequence[Mapping[str, Any]]) -> tuple[Step, ...]:
    """Parse just a list of step definitions (a test or a Python caller's shortcut)."""
    errors = _Errors()
    steps = _parse_steps(list(spec), errors)
    if errors.list:
        raise ValidationFailed(errors.list)
    assert steps is not None
    return steps
