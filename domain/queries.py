"""Filters for the list use cases; each adapter applies them the same way (the contract suite checks)."""

from __future__ import annotations

from datetime import datetime

from attrs import field, frozen

from domain.endpoints import EndpointStatus
from domain.ids import EndpointId, JobId
from domain.jobs import JobStatus
from domain.pagination import PageRequest
from domain.runs import RunSource, RunStatus
from domain.validation import aware
from domain.workflows import WorkflowStatus


@frozen(kw_only=True)
class JobQuery:
    """Jobs newest first; ``search`` matches the name or slug, case-insensitively.
    ``label`` is ``(key, value)``; archived jobs appear only when asked for by status."""

    status: JobStatus | None = None
    label: tuple[str, str] | None = None
    search: str | None = None
    page: PageRequest = field(factory=PageRequest)


@frozen(kw_only=True)
class EndpointQuery:
    """Endpoints newest first; archived ones appear only when asked for by status."""

    job_id: JobId | None = None
    status: EndpointStatus | None = None
    page: PageRequest = field(factory=PageRequest)


@frozen(kw_only=True)
class RunQuery:
    """Runs newest first by ``scheduled_at``; ``since`` is inclusive and ``until`` exclusive."""

    job_id: JobId | None = None
    endpoint_id: EndpointId | None = None
    status: RunStatus | None = None
    source: RunSource | None = None
    since: datetime | None = field(default=None, validator=aware)
    until: datetime | None = field(default=None, validator=aware)
    dead_lettered: bool | None = None
    page: PageRequest = field(factory=PageRequest)


@frozen(kw_only=True)
class WorkflowQuery:
    """Workflows at their newest version, newest first; archived ones appear only when asked for by status."""

    status: WorkflowStatus | None = None
    page: PageRequest = field(factory=PageRequest)


def _check_after_seq(instance: object, attribute: object, value: int | None) -> None:
    from domain.errors import ValidationFailed

    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValidationFailed.field("after_seq", "must be a whole number, 0 or more")


@frozen(kw_only=True)
class EventQuery:
    """Events in the order they were recorded (``seq`` ascending), only those after ``after_seq``
    when given, only ``topic`` when given; the page's cursor continues after its last event."""

    topic: str | None = None
    after_seq: int | None = field(default=None, validator=_check_after_seq)
    page: PageRequest = field(factory=PageRequest)
