"""``/v1/jobs``: define, list, read, change, pause, resume and archive jobs; list a job's endpoints."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from api.http.auth import needs
from api.http.openapi import errors
from api.http.params import JobIdPath
from api.http.schemas.common import given, literal_of
from api.http.schemas.endpoints import EndpointList, EndpointOut
from api.http.schemas.jobs import JobCreate, JobList, JobOut, JobPatch
from domain.endpoints import EndpointStatus
from domain.errors import ValidationFailed
from domain.ids import JobId
from domain.jobs import JobStatus
from domain.pagination import PageRequest
from domain.queries import EndpointQuery, JobQuery
from domain.tokens import Permission
from services.audit import AuditService
from services.jobs import JobsService
from services.tokens import Principal



class JobsController(Controller):
    path = "/jobs"
    tags = ["jobs"]

    @post("/", opt=needs(Permission.ADMIN), responses=errors(409), operation_id="createJob", summary="Create a job")
    async def create_job(
        self,
        data: JSONBody[JobCreate],
        jobs: NamedDependency[JobsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> JobOut:
        """Create a job in the caller's tenant; its slug must be new there."""
        async with audit.action(principal.actor, "job.create", "job", summary={"slug": data.slug, "name": data.name}):
            job = await jobs.create(principal.tenant_id, given(data))
        return JobOut.of(job)

    @get("/", opt=needs(Permission.READ), responses=errors(), operation_id="listJobs", summary="List jobs")
    async def list_jobs(
        self,
        jobs: NamedDependency[JobsService],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        status: Annotated[
            literal_of(JobStatus) | None,
            QueryParameter(description="Only jobs in this status; archived jobs are listed only when asked for."),
        ] = None,
        label: Annotated[
            str | None, QueryParameter(max_length=400, description="Only jobs with this label, as key=value.")
        ] = None,
        search: Annotated[
            str | None,
            QueryParameter(max_length=200, description="Only jobs whose name or slug contains this (any case)."),
        ] = None,
    ) -> JobList:
        """The tenant's jobs, newest first."""
        query = JobQuery(
            status=JobStatus(status) if status else None, label=_label(label), search=search or None, page=page
        )
        result = await jobs.list(principal.tenant_id, query)
        return JobList(items=[JobOut.of(job) for job in result.items], next_cursor=result.next_cursor)

    @get("/{job_id:str}", opt=needs(Permission.READ), responses=errors(404), operation_id="getJob", summary="Get a job")
    async def get_job(
        self, job_id: JobIdPath, jobs: NamedDependency[JobsService], principal: NamedDependency[Principal]
    ) -> JobOut:
        """One job of the tenant."""
        return JobOut.of(await jobs.get(principal.tenant_id, JobId(job_id)))

    @patch(
        "/{job_id:str}", opt=needs(Permission.ADMIN), responses=errors(404, 409), operation_id="updateJob",
        summary="Change a job",
    )
    async def update_job(
        self,
        job_id: JobIdPath,
        data: JSONBody[JobPatch],
        jobs: NamedDependency[JobsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> JobOut:
        """Change the given fields of a job; the others keep their value."""
        patch_spec = given(data)
        async with audit.action(principal.actor, "job.update", "job", job_id, summary={"fields": sorted(patch_spec)}):
            job = await jobs.update(principal.tenant_id, JobId(job_id), patch_spec)
        return JobOut.of(job)

    @post(
        "/{job_id:str}/pause", status_code=200, opt=needs(Permission.OPERATE), responses=errors(404, 409),
        operation_id="pauseJob", summary="Pause a job",
    )
    async def pause_job(
        self,
        job_id: JobIdPath,
        jobs: NamedDependency[JobsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> JobOut:
        """Pause a job: none of its endpoints runs until it resumes."""
        async with audit.action(principal.actor, "job.pause", "job", job_id):
            job = await jobs.pause(principal.tenant_id, JobId(job_id))
        return JobOut.of(job)

    @post(
        "/{job_id:str}/resume", status_code=200, opt=needs(Permission.OPERATE), responses=errors(404, 409),
        operation_id="resumeJob", summary="Resume a job",
    )
    async def resume_job(
        self,
        job_id: JobIdPath,
        jobs: NamedDependency[JobsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> JobOut:
        """Resume a paused job."""
        async with audit.action(principal.actor, "job.resume", "job", job_id):
            job = await jobs.resume(principal.tenant_id, JobId(job_id))
        return JobOut.of(job)

    @post(
        "/{job_id:str}/archive", status_code=200, opt=needs(Permission.ADMIN), responses=errors(404, 409),
        operation_id="archiveJob", summary="Archive a job",
    )
    async def archive_job(
        self,
        job_id: JobIdPath,
        jobs: NamedDependency[JobsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> JobOut:
        """Archive a job and every endpoint in it; archived jobs are read-only."""
        async with audit.action(principal.actor, "job.archive", "job", job_id):
            job = await jobs.archive(principal.tenant_id, JobId(job_id))
        return JobOut.of(job)

    @get(
        "/{job_id:str}/endpoints", opt=needs(Permission.READ), responses=errors(404), operation_id="listJobEndpoints",
        summary="List a job's endpoints",
    )
    async def list_job_endpoints(
        self,
        job_id: JobIdPath,
        jobs: NamedDependency[JobsService],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        status: Annotated[
            literal_of(EndpointStatus) | None,
            QueryParameter(description="Only endpoints in this status; archived ones only when asked for."),
        ] = None,
    ) -> EndpointList:
        """The job's endpoints, newest first."""
        query = EndpointQuery(status=EndpointStatus(status) if status else None, page=page)
        result = await jobs.endpoints(principal.tenant_id, JobId(job_id), query)
        return EndpointList(items=[EndpointOut.of(e) for e in result.items], next_cursor=result.next_cursor)


def _label(text: str | None) -> tuple[str, str] | None:
    """``key=value`` as a pair; raises ``ValidationFailed`` on ``label`` otherwise."""
    if text is None or text == "":
        return None
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValidationFailed.field("label", "must look like key=value")
    return key, value
