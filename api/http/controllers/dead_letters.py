"""``/v1/dead-letters``: runs that failed on their last attempt, and retrying them."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api.http.auth import needs
from api.http.openapi import errors
from api.http.params import RunIdPath, timestamp, timestamp_query
from api.http.schemas.common import literal_of
from api.http.schemas.runs import RunList, RunOut
from domain.ids import EndpointId, JobId, RunId
from domain.pagination import PageRequest
from domain.queries import RunQuery
from domain.runs import RunSource, RunStatus
from domain.tokens import Permission
from services.audit import AuditService
from services.runs import RunsService
from services.tokens import Principal


class DeadLettersController(Controller):
    path = "/dead-letters"
    tags = ["runs"]

    @get("/", opt=needs(Permission.READ), responses=errors(), operation_id="listDeadLetters", summary="List dead letters")
    async def list_dead_letters(
        self,
        runs: NamedDependency[RunsService],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        job_id: Annotated[str | None, QueryParameter(max_length=100, description="Only runs of this job.")] = None,
        endpoint_id: Annotated[
            str | None, QueryParameter(max_length=100, description="Only runs of this endpoint.")
        ] = None,
        status: Annotated[literal_of(RunStatus) | None, QueryParameter(description="Only runs in this status.")] = None,
        source: Annotated[literal_of(RunSource) | None, QueryParameter(description="Only runs with this cause.")] = None,
        since: timestamp_query("Only runs scheduled at or after this time.") = None,
        until: timestamp_query("Only runs scheduled before this time.") = None,
    ) -> RunList:
        """Runs that used their last attempt and still failed, not yet retried; newest scheduled_at first."""
        query = RunQuery(
            job_id=JobId(job_id) if job_id else None,
            endpoint_id=EndpointId(endpoint_id) if endpoint_id else None,
            status=RunStatus(status) if status else None,
            source=RunSource(source) if source else None,
            since=timestamp(since, "since"),
            until=timestamp(until, "until"),
            page=page,
        )
        result = await runs.dead_letters(principal.tenant_id, query)
        return RunList(items=[RunOut.of(run) for run in result.items], next_cursor=result.next_cursor)

    @post(
        "/{run_id:str}/retry", opt=needs(Permission.OPERATE), responses=errors(404, 409),
        operation_id="retryDeadLetter", summary="Retry a dead letter",
    )
    async def retry_dead_letter(
        self,
        run_id: RunIdPath,
        runs: NamedDependency[RunsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> RunOut:
        """Give a dead letter a fresh attempt budget: a new pending run now (source `retry`, its
        `retry_of` naming the dead letter), which leaves the dead letters. A run that is not a dead
        letter (or was retried already) answers 409 invalid_transition."""
        async with audit.action(principal.actor, "run.retry", "run", summary={"retry_of": run_id}):
            run = await runs.retry_dead_letter(principal.tenant_id, RunId(run_id))
        return RunOut.of(run)
