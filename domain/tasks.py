"""Task: what a run executes when no endpoint supplies it (a workflow step with its own target)."""

from __future__ import annotations

from datetime import timedelta

from attrs import field, frozen

from domain.errors import ValidationFailed
from domain.retry import RetryPolicy
from domain.targets import HttpTarget, PythonTarget, Target
from domain.validation import non_empty_text, positive_duration


DEFAULT_TIMEOUT = timedelta(seconds=30)
MAX_TIMEOUT = timedelta(hours=24)


def _check_timeout(instance: object, attribute: object, value: timedelta) -> None:
    positive_duration(instance, attribute, value)
    if value > MAX_TIMEOUT:
        raise ValidationFailed.field("timeout", "must be at most 24 hours")


def _check_target(instance: object, attribute: object, value: object) -> None:
    if not isinstance(value, (HttpTarget, PythonTarget)):
        raise ValidationFailed.field("target", "must be an http or python target")


@frozen(kw_only=True)
class Task:
    """A target with its timeout and retry policy, carried by the run itself.

    Endpoint runs take these from their endpoint; a workflow step that calls an
    HTTP URL or a Python handler directly has no endpoint, so its runs carry a
    task (a snapshot of the workflow version's step: editing the workflow later
    does not change runs in flight). It offers what an executor reads from an
    endpoint: ``id``, ``name``, ``target`` and ``timeout``.
    """

    name: str = field(validator=non_empty_text(200))
    target: Target = field(validator=_check_target)
    timeout: timedelta = field(default=DEFAULT_TIMEOUT, validator=_check_timeout)
    retry: RetryPolicy = field(factory=RetryPolicy)

    @property
    def id(self) -> None:
        """Tasks have no endpoint id."""
        return None
