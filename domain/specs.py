"""Definitions in the product's public vocabulary (API.md), parsed into domain values.

The API, the CLI and Python callers describe jobs and endpoints with plain
mappings (``{"schedule": {"interval_s": 60}}``). This module turns them into
entity fields, collecting every problem with the path of the field that
caused it, so a bad definition is refused whole and names what to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from domain.endpoints import DEFAULT_TIMEOUT, JobEndpoint
from domain.errors import FieldError, ValidationFailed
from domain.hints import IntervalHint, OneShotHint
from domain.jobs import Job
from domain.retry import RetryPolicy
from domain.schedules import CronSchedule, IntervalSchedule
from domain.targets import HttpTarget, PythonTarget
from domain.tasks import Task

JOB_FIELDS = ("slug", "name", "description", "labels", "annotations", "provenance")
ENDPOINT_FIELDS = (
    "job_id", "name", "description", "target", "schedule", "min_interval_s", "max_interval_s",
    "retry", "timeout_s", "priority", "allow_concurrent", "auto_pause_after",
)


class _Collector:
    """Collects field errors so one refusal lists them all."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def run(self, path: str, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except ValidationFailed as exc:
            self.errors.extend(error.prefixed(path) if path else error for error in exc.errors)
        except (TypeError, ValueError) as exc:
            self.errors.append(FieldError(path, str(exc)))
        return None

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


def _unknown(spec: Mapping[str, Any], allowed: tuple[str, ...], prefix: str, errors: _Collector) -> None:
    for key in spec:
        if key not in allowed:
            errors.fail(f"{prefix}{key}", "is not a known field")


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationFailed.field(path, "must be an object")
    return value


def seconds(value: Any, path: str, *, allow_none: bool = False) -> timedelta | None:
    """A duration given in seconds (a number); ``path`` names it in errors."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationFailed.field(path, "must be a number of seconds")
    if value <= 0:
        raise ValidationFailed.field(path, "must be greater than zero")
    if value > 10 * 365 * 24 * 3600:
        raise ValidationFailed.field(path, "must be at most ten years")
    return timedelta(seconds=value)


def parse_timestamp(value: Any, path: str) -> datetime:
    """An ISO 8601 timestamp with a UTC offset (or ``Z``), or an aware ``datetime``."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationFailed.field(path, f"is not an ISO 8601 timestamp: {value!r}") from None
    else:
        raise ValidationFailed.field(path, "must be an ISO 8601 timestamp")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationFailed.field(path, "must carry a UTC offset, such as 'Z' or '+01:00'")
    return moment


def parse_target(spec: Any) -> HttpTarget | PythonTarget:
    spec = _mapping(spec, "")
    kind = spec.get("kind")
    if kind == "http":
        allowed = ("kind", "method", "url", "headers", "body")
        extra = [k for k in spec if k not in allowed]
        if extra:
            raise ValidationFailed.field(extra[0], "is not a known field")
        if "url" not in spec:
            raise ValidationFailed.field("url", "is required")
        return HttpTarget(**{k: v for k, v in spec.items() if k != "kind"})
    if kind == "python":
        allowed = ("kind", "handler", "params")
        extra = [k for k in spec if k not in allowed]
        if extra:
            raise ValidationFailed.field(extra[0], "is not a known field")
        if "handler" not in spec:
            raise ValidationFailed.field("handler", "is required")
        return PythonTarget(**{k: v for k, v in spec.items() if k != "kind"})
    raise ValidationFailed.field("kind", "must be 'http' or 'python'")


def parse_schedule(spec: Any) -> CronSchedule | IntervalSchedule:
    spec = _mapping(spec, "")
    has_cron = spec.get("cron") is not None
    has_interval = spec.get("interval_s") is not None
    if has_cron == has_interval:
        raise ValidationFailed.field("", "give exactly one of cron or interval_s")
    if has_cron:
        extra = [k for k in spec if k not in ("cron", "timezone")]
        if extra:
            raise ValidationFailed.field(extra[0], "is not a known field for a cron schedule")
        return CronSchedule(cron=spec["cron"], timezone=spec.get("timezone") or "UTC")
    extra = [k for k in spec if k != "interval_s"]
    if extra:
        raise ValidationFailed.field(extra[0], "is not a known field for an interval schedule")
    return IntervalSchedule(interval=seconds(spec["interval_s"], "interval_s"))


def parse_retry(spec: Any) -> RetryPolicy:
    spec = _mapping(spec, "")
    allowed = ("max_attempts", "backoff_s", "backoff_max_s", "jitter")
    extra = [k for k in spec if k not in allowed]
    if extra:
        raise ValidationFailed.field(extra[0], "is not a known field")
    fields: dict[str, Any] = {}
    if "max_attempts" in spec:
        fields["max_attempts"] = spec["max_attempts"]
    if "backoff_s" in spec:
        fields["backoff"] = seconds(spec["backoff_s"], "backoff_s")
    if "backoff_max_s" in spec:
        fields["backoff_max"] = seconds(spec["backoff_max_s"], "backoff_max_s")
    if "jitter" in spec:
        if not isinstance(spec["jitter"], bool):
            raise ValidationFailed.field("jitter", "must be true or false")
        fields["jitter"] = spec["jitter"]
    return with_api_paths(lambda: RetryPolicy(**fields))


_API_NAMES = {
    "backoff": "backoff_s", "backoff_max": "backoff_max_s", "min_interval": "min_interval_s",
    "max_interval": "max_interval_s", "timeout": "timeout_s", "interval": "interval_s",
}


def _api_path(error: FieldError) -> FieldError:
    head, _, rest = error.path.partition(".")
    head = _API_NAMES.get(head, head)
    return FieldError(f"{head}.{rest}" if rest else head, error.message)


def endpoint_fields(spec: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Entity fields from an endpoint definition; raises ``ValidationFailed`` listing every bad field.

    With ``partial`` (a PATCH), only the given fields are parsed and none is required.
    """
    errors = _Collector()
    if not isinstance(spec, Mapping):
        raise ValidationFailed.field("", "must be an object")
    _unknown(spec, ENDPOINT_FIELDS, "", errors)
    if not partial:
        for required in ("name", "target", "schedule"):
            if spec.get(required) is None:
                errors.fail(required, "is required")
    fields: dict[str, Any] = {}
    for key in ("job_id", "name", "description", "priority", "allow_concurrent", "auto_pause_after"):
        if key in spec:
            fields[key] = spec[key]
    if spec.get("target") is not None:
        fields["target"] = errors.run("target", lambda: parse_target(spec["target"]))
    if spec.get("schedule") is not None:
        fields["schedule"] = errors.run("schedule", lambda: parse_schedule(spec["schedule"]))
    if spec.get("retry") is not None:
        fields["retry"] = errors.run("retry", lambda: parse_retry(spec["retry"]))
    for api_name, name in (("min_interval_s", "min_interval"), ("max_interval_s", "max_interval")):
        if api_name in spec:
            fields[name] = errors.run("", lambda n=api_name: seconds(spec[n], n, allow_none=True))
    if "timeout_s" in spec:
        fields["timeout"] = errors.run("", lambda: seconds(spec["timeout_s"], "timeout_s", allow_none=True)) or DEFAULT_TIMEOUT
    for key in ("allow_concurrent",):
        if key in fields and not isinstance(fields[key], bool):
            errors.fail(key, "must be true or false")
    if "job_id" in fields and fields["job_id"] is not None and not isinstance(fields["job_id"], str):
        errors.fail("job_id", "must be a job id")
    if "description" in fields and fields["description"] is None:
        fields["description"] = ""
    _check_entity_fields(JobEndpoint, fields, errors)
    low, high = fields.get("min_interval"), fields.get("max_interval")
    if isinstance(low, timedelta) and isinstance(high, timedelta) and low > high:
        errors.fail("min_interval_s", "must not be greater than max_interval_s")
    errors.raise_if_any()
    return fields


def build_endpoint(make: Callable[..., JobEndpoint], fields: Mapping[str, Any]) -> JobEndpoint:
    """Call ``make(**fields)`` and report entity-level errors with the API's field names."""
    return with_api_paths(lambda: make(**fields))


def job_fields(spec: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Entity fields from a job definition; raises ``ValidationFailed`` listing every bad field."""
    errors = _Collector()
    if not isinstance(spec, Mapping):
        raise ValidationFailed.field("", "must be an object")
    _unknown(spec, JOB_FIELDS, "", errors)
    if not partial:
        for required in ("slug", "name"):
            if spec.get(required) is None:
                errors.fail(required, "is required")
    fields = {key: spec[key] for key in JOB_FIELDS if key in spec}
    for key in ("description",):
        if key in fields and fields[key] is None:
            fields[key] = ""
    for key in ("labels", "annotations"):
        if key in fields and fields[key] is None:
            fields[key] = {}
    _check_entity_fields(Job, fields, errors)
    errors.raise_if_any()
    return fields


def _check_entity_fields(cls: type, fields: Mapping[str, Any], errors: _Collector) -> None:
    """Run each given field's own validator, so one refusal lists every bad field
    (the entity's constructor stops at the first). Fields already reported are skipped."""
    reported = {error.path.partition(".")[0] for error in errors.errors}
    attributes = attrs.fields_dict(cls)
    for name, value in fields.items():
        attribute = attributes.get(name)
        if attribute is None or attribute.validator is None or _api_path(FieldError(name, "")).path in reported:
            continue
        errors.run("", lambda a=attribute, v=value: with_api_paths(lambda: a.validator(None, a, v)))


def interval_hint(spec: Mapping[str, Any], *, now: datetime) -> IntervalHint:
    """``{"interval_s", "ttl_s" | "expires_at", "reason"}`` as an :class:`IntervalHint`."""
    errors = _Collector()
    _unknown(spec, ("interval_s", "ttl_s", "expires_at", "reason"), "", errors)
    interval = errors.run("", lambda: seconds(spec.get("interval_s"), "interval_s"))
    expires = errors.run("", lambda: _expiry(spec, now))
    errors.raise_if_any()
    return with_api_paths(lambda: IntervalHint(interval=interval, expires_at=expires, reason=spec.get("reason") or ""))


def oneshot_hint(spec: Mapping[str, Any], *, now: datetime) -> OneShotHint:
    """``{"run_at", "ttl_s" | "expires_at", "reason"}`` as a :class:`OneShotHint`."""
    errors = _Collector()
    _unknown(spec, ("run_at", "ttl_s", "expires_at", "reason"), "", errors)
    run_at = errors.run("", lambda: parse_timestamp(spec.get("run_at"), "run_at"))
    expires = errors.run("", lambda: _expiry(spec, now))
    errors.raise_if_any()
    return with_api_paths(lambda: OneShotHint(run_at=run_at, expires_at=expires, reason=spec.get("reason") or ""))


def _expiry(spec: Mapping[str, Any], now: datetime) -> datetime:
    if spec.get("expires_at") is not None and spec.get("ttl_s") is not None:
        raise ValidationFailed.field("ttl_s", "give ttl_s or expires_at, not both")
    if spec.get("expires_at") is not None:
        return parse_timestamp(spec["expires_at"], "expires_at")
    if spec.get("ttl_s") is not None:
        return now + seconds(spec["ttl_s"], "ttl_s")
    raise ValidationFailed.field("ttl_s", "give ttl_s or expires_at")


def with_api_paths(build: Callable[[], Any]) -> Any:
    """Call ``build`` and report entity-level errors with the API's field names."""
    try:
        return build()
    except ValidationFailed as exc:
        raise ValidationFailed([_api_path(e) for e in exc.errors]) from None


def target_spec(target: HttpTarget | PythonTarget) -> dict[str, Any]:
    """A target in the public vocabulary; :func:`parse_target` reads it back."""
    if isinstance(target, HttpTarget):
        return {
            "kind": "http", "method": target.method, "url": target.url,
            "headers": dict(target.headers), "body": target.body,
        }
    return {"kind": "python", "handler": target.handler, "params": dict(target.params)}


def retry_spec(retry: RetryPolicy) -> dict[str, Any]:
    """A retry policy in the public vocabulary; :func:`parse_retry` reads it back."""
    return {
        "max_attempts": retry.max_attempts,
        "backoff_s": retry.backoff.total_seconds(),
        "backoff_max_s": retry.backoff_max.total_seconds(),
        "jitter": retry.jitter,
    }


def task_spec(task: Task) -> dict[str, Any]:
    """A run's task in the public vocabulary; :func:`parse_task` reads it back."""
    return {
        "name": task.name,
        "target": target_spec(task.target),
        "timeout_s": task.timeout.total_seconds(),
        "retry": retry_spec(task.retry),
    }


def parse_task(spec: Mapping[str, Any]) -> Task:
    """A :class:`Task` from :func:`task_spec`'s form."""
    return Task(
        name=spec["name"],
        target=parse_target(spec["target"]),
        timeout=seconds(spec["timeout_s"], "timeout_s"),
        retry=parse_retry(spec["retry"]),
    )


def endpoint_spec(endpoint: JobEndpoint) -> dict[str, Any]:
    """The definition of ``endpoint`` in the public vocabulary; ``endpoint_fields`` reads it back."""
    schedule = endpoint.schedule
    if isinstance(schedule, CronSchedule):
        schedule_spec: dict[str, Any] = {"cron": schedule.cron, "timezone": schedule.timezone}
    else:
        schedule_spec = {"interval_s": schedule.interval.total_seconds()}
    return {
        "job_id": endpoint.job_id,
        "name": endpoint.name,
        "description": endpoint.description,
        "target": target_spec(endpoint.target),
        "schedule": schedule_spec,
        "min_interval_s": endpoint.min_interval.total_seconds() if endpoint.min_interval else None,
        "max_interval_s": endpoint.max_interval.total_seconds() if endpoint.max_interval else None,
        "retry": retry_spec(endpoint.retry),
        "timeout_s": endpoint.timeout.total_seconds(),
        "priority": endpoint.priority,
        "allow_concurrent": endpoint.allow_concurrent,
        "auto_pause_after": endpoint.auto_pause_after,
    }
