"""Job use cases: create, read, list, update, pause, resume, archive."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.endpoints import EndpointStatus, JobEndpoint
from domain.ids import JobId, TenantId
from domain.jobs import Job
from domain.pagination import Page
from domain.ports import Clock, UnitOfWorkFactory
from domain.queries import EndpointQuery, JobQuery
from domain.specs import job_fields
from domain.errors import ValidationFailed


class JobsService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create(self, tenant_id: TenantId, spec: Mapping[str, Any]) -> Job:
        """Create a job from its definition; raises ``ValidationFailed`` or ``AlreadyExists`` (slug)."""
        fields = job_fields(spec)
        job = _build(lambda: Job.new(tenant_id=tenant_id, now=self._clock.now(), **fields))
        async with self._uow() as uow:
            await uow.jobs.add(job)
            await uow.commit()
        return job

    async def get(self, tenant_id: TenantId, job_id: JobId) -> Job:
        async with self._uow() as uow:
            return await uow.jobs.get(job_id, tenant_id=tenant_id)

    async def get_by_slug(self, tenant_id: TenantId, slug: str) -> Job:
        async with self._uow() as uow:
            return await uow.jobs.get_by_slug(slug, tenant_id=tenant_id)

    async def list(self, tenant_id: TenantId, query: JobQuery | None = None) -> Page[Job]:
        async with self._uow() as uow:
            return await uow.jobs.list(tenant_id, query or JobQuery())

    async def update(self, tenant_id: TenantId, job_id: JobId, patch: Mapping[str, Any]) -> Job:
        """Change the given fields of a job; the rest stay as they are."""
        fields = job_fields(patch, partial=True)
        async with self._uow() as uow:
            job = await uow.jobs.get(job_id, tenant_id=tenant_id)
            changed = _build(lambda: job.changed(now=self._clock.now(), **fields))
            await uow.jobs.update(changed)
            await uow.commit()
        return changed

    async def pause(self, tenant_id: TenantId, job_id: JobId) -> Job:
        """Pause a job: none of its endpoints is claimed until it resumes."""
        async with self._uow() as uow:
            job = (await uow.jobs.get(job_id, tenant_id=tenant_id)).pause(now=self._clock.now())
            await uow.jobs.update(job)
            await uow.commit()
        return job

    async def resume(self, tenant_id: TenantId, job_id: JobId) -> Job:
        async with self._uow() as uow:
            job = (await uow.jobs.get(job_id, tenant_id=tenant_id)).resume(now=self._clock.now())
            await uow.jobs.update(job)
            await uow.commit()
        return job

    async def archive(self, tenant_id: TenantId, job_id: JobId) -> Job:
        """Archive a job and every endpoint in it, in one transaction."""
        now = self._clock.now()
        async with self._uow() as uow:
            job = (await uow.jobs.get(job_id, tenant_id=tenant_id)).archive(now=now)
            await uow.jobs.update(job)
            for endpoint in await _all_endpoints(uow, tenant_id, job_id):
                await uow.endpoints.update(endpoint.archive(now=now))
            await uow.commit()
        return job

    async def endpoints(self, tenant_id: TenantId, job_id: JobId, query: EndpointQuery | None = None) -> Page[JobEndpoint]:
        """A page of the job's endpoints; raises ``NotFound`` when the job is not the tenant's."""
        query = query or EndpointQuery()
        async with self._uow() as uow:
            await uow.jobs.get(job_id, tenant_id=tenant_id)
            return await uow.endpoints.list(tenant_id, EndpointQuery(job_id=job_id, status=query.status, page=query.page))


async def _all_endpoints(uow: Any, tenant_id: TenantId, job_id: JobId) -> list[JobEndpoint]:
    from domain.pagination import Cursor, PageRequest, MAX_LIMIT

    found: list[JobEndpoint] = []
    for status in (EndpointStatus.ACTIVE, EndpointStatus.PAUSED):
        cursor: Cursor | None = None
        while True:
            page = await uow.endpoints.list(
                tenant_id, EndpointQuery(job_id=job_id, status=status, page=PageRequest(limit=MAX_LIMIT, cursor=cursor))
            )
            found.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = Cursor.decode(page.next_cursor)
    return found


def _build(make: Any) -> Any:
    """Run an entity constructor, turning attrs' ``TypeError`` for a bad field into ``ValidationFailed``."""
    try:
        return make()
    except TypeError as exc:
        raise ValidationFailed.field("", str(exc)) from None
