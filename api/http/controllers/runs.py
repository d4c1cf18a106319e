"""``/v1/runs``: the history of every execution attempt, filtered and paginated; logs and cancel."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api.http.auth import needs, provide_principal
from api.http.openapi import errors
from api.http.params import CursorParam, Limit, RunIdPath, provide_page, timestamp, timestamp_query
from api.http.schemas.common import literal_of
from api.http.schemas.run_logs import LogLineOut, RunLogs
from api.http.schemas.runs import RunList, RunOut
from domain.ids import EndpointId, JobId, RunId
from domain.pagination import DEFAULT_LIMIT
from domain.queries import RunQuery
from domain.runs import RunSource, RunStatus
from domain.tokens import Permission
from services.audit import AuditService
from services.runs import RunsService
from services.tokens import Principal


class RunsController(Controller):
    path = "/runs"
    tags = ["runs"]

    @get("/", opt=needs(Permission.READ), responses=errors(), operation_id="listRuns", summary="List runs")
    async def list_runs(
        self,
        request: Request[Any, Any, Any],
        runs: NamedDependency[RunsService],
        limit: Limit = DEFAULT_LIMIT,
        cursor: CursorParam = None,
        job_id: Annotated[str | None, QueryParameter(max_length=100, description="Only runs of this job.")] = None,
        endpoint_id: Annotated[
            str | None, QueryParameter(max_length=100, description="Only runs of this endpoint.")
        ] = None,
        status: Annotated[literal_of(RunStatus) | None, QueryParameter(description="Only runs in this status.")] = None,
        source: Annotated[literal_of(RunSource) | None, QueryParameter(description="Only runs with this cause.")] = None,
        since: timestamp_query("Only runs scheduled at or after this time.") = None,
        until: timestamp_query("Only runs scheduled before this time.") = None,
    ) -> RunList:
        """The tenant's runs, newest scheduled_at first."""
        # The busiest route asks for one dependency: Litestar resolves two or more in a task group
        # (a task each, about a tenth of the request's CPU time), so it takes the caller and the
        # page from the same providers itself (ADR 0019).
        principal, page = provide_principal(request), provide_page(limit, cursor)
        query = RunQuery(
            job_id=JobId(job_id) if job_id else None,
            endpoint_id=EndpointId(endpoint_id) if endpoint_id else None,
            status=RunStatus(status) if status else None,
            source=RunSource(source) if source else None,
            since=timestamp(since, "since"),
            until=timestamp(until, "until"),
            page=page,
        )
        result = await runs.history(principal.tenant_id, query)
        return RunList(items=[RunOut.of_view(view) for view in result.items], next_cursor=result.next_cursor)

    @get("/{run_id:str}", opt=needs(Permission.READ), responses=errors(404), operation_id="getRun", summary="Get a run")
    async def get_run(
        self, run_id: RunIdPath, runs: NamedDependency[RunsService], principal: NamedDependency[Principal]
    ) -> RunOut:
        """One run of the tenant, with its result or error."""
        return RunOut.of(await runs.get(principal.tenant_id, RunId(run_id)))

    # -- execution (the engine's routes) --------------------------------------------

    @get(
        "/{run_id:str}/logs", opt=needs(Permission.READ), responses=errors(404), operation_id="getRunLogs",
        summary="Get a run's log",
    )
    async def get_run_logs(
        self, run_id: RunIdPath, runs: NamedDependency[RunsService], principal: NamedDependency[Principal]
    ) -> RunLogs:
        """The lines the run logged while it executed, oldest first; empty before it starts."""
        lines = await runs.logs(principal.tenant_id, RunId(run_id))
        return RunLogs(items=[LogLineOut.of(line) for line in lines])

    @post(
        "/{run_id:str}/cancel", status_code=200, opt=needs(Permission.OPERATE), responses=errors(404, 409),
        operation_id="cancelRun", summary="Cancel a run",
    )
    async def cancel_run(
        self,
        run_id: RunIdPath,
        runs: NamedDependency[RunsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> RunOut:
        """Cancel a pending or running run: a pending one never starts, a running one is stopped at
        its worker's next heartbeat. A finished run answers 409 invalid_transition."""
        async with audit.action(principal.actor, "run.cancel", "run", run_id):
            run = await runs.cancel(principal.tenant_id, RunId(run_id))
        return RunOut.of(run)
