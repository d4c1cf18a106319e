"""Runs: one execution attempt each."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta, Struct

from api.http.schemas.common import Id, NextCursor, literal_of
from domain.runs import Run, RunResult, RunSource, RunStatus, RunView

RunStatusName = Annotated[
    literal_of(RunStatus),
    Meta(description="pending, running, succeeded, failed, canceled, timed_out or expired (its worker died)."),
]
RunSourceName = Annotated[literal_of(RunSource), Meta(description="What caused the run.")]


class RunResultOut(Struct, kw_only=True):
    """What a finished attempt produced."""

    status_code: Annotated[int | None, Meta(description="The HTTP status code (HTTP targets).")]
    body_excerpt: Annotated[str | None, Meta(description="The start of the response body (at most 4 KiB).")]
    output: Annotated[Any, Meta(description="The JSON a Python handler returned.")]

    @classmethod
    def of(cls, result: RunResult | None) -> RunResultOut | None:
        if result is None:
            return None
        return cls(status_code=result.status_code, body_excerpt=result.body_excerpt, output=result.output)


class RunOut(Struct):
    """A run: one execution attempt of an endpoint, or of a workflow step with its own target.

    Its fields are :class:`~domain.runs.RunView`'s, in the same order (a unit test checks), so
    a view becomes one positionally (:meth:`of_view`)."""

    id: Id
    endpoint_id: Annotated[
        str | None, Meta(description="The endpoint that ran; null for a workflow step with its own target.")
    ]
    job_id: Annotated[str | None, Meta(description="The endpoint's job, if any.")]
    workflow_run_id: Annotated[str | None, Meta(description="The workflow run it is a step of, if any.")]
    step_key: Annotated[str | None, Meta(description="The workflow step it executes, if any.")]
    status: RunStatusName
    source: RunSourceName
    attempt: Annotated[int, Meta(ge=1, description="1 for the first attempt, 2 for the first retry, …")]
    params: Annotated[dict[str, Any], Meta(description="Parameters given for this run only (run now).")]
    scheduled_at: Annotated[datetime, Meta(description="When the run was due (UTC).")]
    created_at: Annotated[datetime, Meta(description="When the run was created (UTC).")]
    started_at: Annotated[datetime | None, Meta(description="When a worker started it (UTC).")]
    finished_at: Annotated[datetime | None, Meta(description="When it reached its final state (UTC).")]
    duration_ms: Annotated[float | None, Meta(description="finished_at - started_at, in milliseconds.")]
    result: Annotated[RunResultOut | None, Meta(description="What it produced, once finished.")]
    error: Annotated[str | None, Meta(description="Why it did not succeed (at most 4 KiB).")]
    worker_id: Annotated[str | None, Meta(description="The worker that ran it.")]
    retry_of: Annotated[str | None, Meta(description="The run this one retries, if any.")]
    dead_lettered: Annotated[bool, Meta(description="True when it failed on its last attempt.")]

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls.of_view(RunView.of(run))

    @classmethod
    def of_view(cls, view: RunView) -> RunOut:
        """The run a list shows: the view's fields as they are (its times are in UTC already)."""
        if view.result is None:
            return cls(*view)
        return cls(*view._replace(result=RunResultOut.of(view.result)))


class RunList(Struct, kw_only=True):
    """A page of runs, newest scheduled_at first."""

    items: Annotated[list[RunOut], Meta(description="The runs on this page.")]
    next_cursor: NextCursor
