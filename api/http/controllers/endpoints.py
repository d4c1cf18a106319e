"""``/v1/endpoints``: define, list, read, change, pause, resume, archive, reset failures, hints, runs,
run now, health."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from api.http.auth import needs
from api.http.openapi import errors
from api.http.params import EndpointIdPath, timestamp, timestamp_query
from api.http.schemas.common import given, literal_of
from api.http.schemas.endpoint_health import EndpointHealthOut
from api.http.schemas.endpoints import (
    EndpointCreate,
    EndpointList,
    EndpointOut,
    EndpointPatch,
    IntervalHintRequest,
    OneShotHintRequest,
    PauseRequest,
    RunNowRequest,
)
from api.http.schemas.runs import RunList, RunOut
from domain.endpoints import EndpointStatus
from domain.health import HEALTH_WINDOW
from domain.ids import EndpointId, JobId
from domain.pagination import MAX_LIMIT, PageRequest
from domain.queries import EndpointQuery, RunQuery
from domain.runs import RunSource, RunStatus
from domain.tokens import Permission
from services.audit import AuditService
from services.endpoints import EndpointsService
from services.runs import RunsService
from services.tokens import Principal

_ONE = errors(404, 409)


class EndpointsController(Controller):
    path = "/endpoints"
    tags = ["endpoints"]

    # -- definition ---------------------------------------------------------------

    @post(
        "/", opt=needs(Permission.ADMIN), responses=errors(404, 409), operation_id="createEndpoint",
        summary="Create an endpoint",
    )
    async def create_endpoint(
        self,
        data: JSONBody[EndpointCreate],
        endpoints: NamedDependency[EndpointsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> EndpointOut:
        """Define an endpoint, standalone or in a job (`job_id`); its first run is planned at once.
        An unknown job answers 404."""
        spec = given(data)
        summary = {"name": data.name, "job_id": spec.get("job_id"), "target": spec["target"]["kind"]}
        async with audit.action(principal.actor, "endpoint.create", "endpoint", summary=summary):
            endpoint = await endpoints.create(principal.tenant_id, spec)
        return EndpointOut.of(endpoint)

    @get("/", opt=needs(Permission.READ), responses=errors(), operation_id="listEndpoints", summary="List endpoints")
    async def list_endpoints(
        self,
        endpoints: NamedDependency[EndpointsService],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        job_id: Annotated[str | None, QueryParameter(max_length=100, description="Only the endpoints of this job.")] = None,
        status: Annotated[
            literal_of(EndpointStatus) | None,
            QueryParameter(description="Only endpoints in this status; archived ones only when asked for."),
        ] = None,
    ) -> EndpointList:
        """The tenant's endpoints, newest first."""
        query = EndpointQuery(
            job_id=JobId(job_id) if job_id else None, status=EndpointStatus(status) if status else None, page=page
        )
        result = await endpoints.list(principal.tenant_id, query)
        return EndpointList(items=[EndpointOut.of(e) for e in result.items], next_cursor=result.next_cursor)

    @get(
        "/{endpoint_id:str}", opt=needs(Permission.READ), responses=errors(404), operation_id="getEndpoint",
        summary="Get an endpoint",
    )
    async def get_endpoint(
        self,
        endpoint_id: EndpointIdPath,
        endpoints: NamedDependency[EndpointsService],
        principal: NamedDependency[Principal],
    ) -> EndpointOut:
        """One endpoint of the tenant, with its hints and next run."""
        return EndpointOut.of(await endpoints.get(principal.tenant_id, EndpointId(endpoint_id)))

    @patch(
        "/{endpoint_id:str}", opt=needs(Permission.ADMIN), responses=_ONE, operation_id="updateEndpoint",
        summary="Change an endpoint",
    )
    async def update_endpoint(
        self,
        endpoint_id: EndpointIdPath,
        data: JSONBody[EndpointPatch],
        endpoints: NamedDependency[EndpointsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> EndpointOut:
        """Change the given fields; a new schedule or bounds take effect at once."""
        patch_spec = given(data)
        summary = {"fields": sorted(patch_spec)}
        async with audit.action(principal.actor, "endpoint.update", "endpoint", endpoint_id, summary=summary):
            endpoint = await endpoints.update(principal.tenant_id, EndpointId(endpoint_id), patch_spec)
        return EndpointOut.of(endpoint)

    # -- lifecycle ------------------------------------------------------------------

    @post(
        "/{endpoint_id:str}/pause", status_code=200, opt=needs(Permission.OPERATE), responses=_ONE,
        operation_id="pauseEndpoint", summary="Pause an endpoint",
    )
    async def pause_endpoint(
        self,
        endpoint_id: EndpointIdPath,
        endpoints: NamedDependency[EndpointsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
        data: JSONBody[PauseRequest | None] = None,
    ) -> EndpointOut:
        """Pause until resumed, or until `until` (the body is optional)."""
        until = data.until if data is not None and isinstance(data.until, str) else None
        async with audit.action(principal.actor, "endpoint.pause", "endpoint", endpoint_id, summary={"until": until}):
            endpoint = await endpoints.pause(principal.tenant_id, EndpointId(endpoint_id), until=until)
        return EndpointOut.of(endpoint)

    @post(
        "/{endpoint_id:str}/resume", status_code=200, opt=needs(Permission.OPERATE), responses=_ONE,
        operation_id="resumeEndpoint", summary="Resume an endpoint",
    )
    async def resume_endpoint(
        self,
        endpoint_id: EndpointIdPath,
        endpoints: NamedDependency[EndpointsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> EndpointOut:
        """Resume a paused endpoint (a timed pause ends now); its next run is planned again."""
        async with audit.action(principal.actor, "endpoint.resume", "endpoint", endpoint_id):
            endpoint = await endpoints.resume(principal.tenant_id, EndpointId(endpoint_id))
        return EndpointOut.of(endpoint)

    @post(
        "/{endpoint_id:str}/archive", status_code=200, opt=needs(Permission.ADMIN), responses=_ONE,
        operation_id="archiveEndpoint", summary="Archive an endpoint",
    )
    async def archive_endpoint(
        self,
        endpoint_id: EndpointIdPath,
        endpoints: NamedDependency[EndpointsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> EndpointOut:
        """Archive an endpoint: it never runs again and cannot change; its runs stay."""
        async with audit.action(principal.actor, "endpoint.archive", "endpoint", endpoint_id):
            endpoint = await endpoints.archive(principal.tenant_id, EndpointId(endpoint_id))
        return EndpointOut.of(endpoint)

    @post(
        "/{endpoint_id:str}/reset-failures", status_code=200, opt=needs(Permission.OPERATE), responses=_ONE,
        operation_id="resetEndpointFailures", summary="Reset an endpoint's failure count",
    )
    async def reset_failures(
        self,
        endpoint_id: EndpointIdPath,
        endpoints: NamedDependency[EndpointsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> EndpointOut:
        """Forget consecutive failures: an interval schedule stops backing off."""
        async with audit.action(principal.actor, "endpoint.reset_failures", "endpoint", endpoint_id):
            endpoint = await endpoints.reset_failures(principal.tenant_id, EndpointId(endpoint_id))
        return EndpointOut.of(endpoint)

    # -- hints ----------------------------------------------------------------------

    @put(
        "/{endpoint_id:str}/hints/interval", opt=needs(Permission.OPERATE), responses=_ONE,
        operation_id="setIntervalHint", summary="Set the interval hint",
    )
    async def set_interval_hint(
        self,
        endpoint_id: EndpointIdPath,
        data: JSONBody[IntervalHintRequest],
        endpoints: NamedDependency[EndpointsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> EndpointOut:
        """Run every `interval_s` until the hint expires, within the endpoint's bounds."""
        spec = given(data)
        async with audit.action(principal.actor, "endpoint.hint.interval.set", "endpoint", endpoint_id, summary=spec):
            endpoint = await endpoints.set_interval_hint(principal.tenant_id, EndpointId(endpoint_id), spec)
        return EndpointOut.of(endpoint)

    @delete(
        "/{endpoint_id:str}/hints/interval", status_code=200, opt=needs(Permission.OPERATE), responses=_ONE,
        operation_id="clearIntervalHint", summary="Clear the interval hint",
    )
    async def clear_interval_hint(
        self,
        endpoint_id: EndpointIdPath,
        endpoints: NamedDependency[EndpointsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> EndpointOut:
        """Return to the baseline cadence."""
        async with audit.action(principal.actor, "endpoint.hint.interval.clear", "endpoint", endpoint_id):
            endpoint = await endpoints.clear_interval_hint(principal.tenant_id, EndpointId(endpoint_id))
        return EndpointOut.of(endpoint)

    @put(
        "/{endpoint_id:str}/hints/oneshot", opt=needs(Permission.OPERATE), responses=_ONE,
        operation_id="setOneShotHint", summary="Set the one-shot hint",
    )
    async def set_oneshot_hint(
        self,
        endpoint_id: EndpointIdPath,
        data: JSONBody[OneShotHintRequest],
        endpoints: NamedDependency[EndpointsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> EndpointOut:
        """Run once at `run_at` if that is earlier than the baseline."""
        spec = given(data)
        async with audit.action(principal.actor, "endpoint.hint.oneshot.set", "endpoint", endpoint_id, summary=spec):
            endpoint = await endpoints.set_oneshot_hint(principal.tenant_id, EndpointId(endpoint_id), spec)
        return EndpointOut.of(endpoint)

    @delete(
        "/{endpoint_id:str}/hints/oneshot", status_code=200, opt=needs(Permission.OPERATE), responses=_ONE,
        operation_id="clearOneShotHint", summary="Clear the one-shot hint",
    )
    async def clear_oneshot_hint(
        self,
        endpoint_id: EndpointIdPath,
        endpoints: NamedDependency[EndpointsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> EndpointOut:
        """Drop the one-shot hint."""
        async with audit.action(principal.actor, "endpoint.hint.oneshot.clear", "endpoint", endpoint_id):
            endpoint = await endpoints.clear_oneshot_hint(principal.tenant_id, EndpointId(endpoint_id))
        return EndpointOut.of(endpoint)

    # -- runs -----------------------------------------------------------------------

    @get(
        "/{endpoint_id:str}/runs", opt=needs(Permission.READ), responses=errors(404), operation_id="listEndpointRuns",
        summary="List an endpoint's runs",
    )
    async def list_endpoint_runs(
        self,
        endpoint_id: EndpointIdPath,
        endpoints: NamedDependency[EndpointsService],
        runs: NamedDependency[RunsService],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        status: Annotated[literal_of(RunStatus) | None, QueryParameter(description="Only runs in this status.")] = None,
        source: Annotated[literal_of(RunSource) | None, QueryParameter(description="Only runs with this cause.")] = None,
        since: timestamp_query("Only runs scheduled at or after this time.") = None,
        until: timestamp_query("Only runs scheduled before this time.") = None,
    ) -> RunList:
        """The endpoint's runs, newest scheduled_at first."""
        endpoint = await endpoints.get(principal.tenant_id, EndpointId(endpoint_id))
        query = RunQuery(
            endpoint_id=endpoint.id,
            status=RunStatus(status) if status else None,
            source=RunSource(source) if source else None,
            since=timestamp(since, "since"),
            until=timestamp(until, "until"),
            page=page,
        )
        result = await runs.history(principal.tenant_id, query)
        return RunList(items=[RunOut.of_view(view) for view in result.items], next_cursor=result.next_cursor)

    # -- execution (the engine's routes) --------------------------------------------

    @post(
        "/{endpoint_id:str}/run", opt=needs(Permission.OPERATE), responses=_ONE, operation_id="runEndpointNow",
        summary="Run an endpoint now",
    )
    async def run_endpoint_now(
        self,
        endpoint_id: EndpointIdPath,
        runs: NamedDependency[RunsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
        data: JSONBody[RunNowRequest | None] = None,
    ) -> RunOut:
        """Start a run at once (source `manual`), outside the schedule, which it does not change;
        `params` (the body is optional) apply to this run only. An archived endpoint answers 409."""
        params = data.params if data is not None else {}
        summary = {"endpoint_id": endpoint_id, "params": sorted(params)}  # the names only: values may be secret
        async with audit.action(principal.actor, "endpoint.run", "run", summary=summary):
            run = await runs.run_now(principal.tenant_id, EndpointId(endpoint_id), params)
        return RunOut.of(run)

    @get(
        "/{endpoint_id:str}/health", opt=needs(Permission.READ), responses=errors(404),
        operation_id="getEndpointHealth", summary="Get an endpoint's health",
    )
    async def get_endpoint_health(
        self,
        endpoint_id: EndpointIdPath,
        runs: NamedDependency[RunsService],
        principal: NamedDependency[Principal],
        window: Annotated[
            int,
            QueryParameter(ge=1, le=MAX_LIMIT, description="How many of the newest finished runs to summarize."),
        ] = HEALTH_WINDOW,
    ) -> EndpointHealthOut:
        """The success rate and counts of the newest finished runs, the last success and failure,
        the runs pending and running, whether runs wait in the dead letters, and the next run and why."""
        return EndpointHealthOut.of(await runs.health(principal.tenant_id, EndpointId(endpoint_id), window=window))
