"""Jobs in memory."""

from __future__ import annotations

from adapters.memory.store import MemoryStore, paginate
from domain.errors import AlreadyExists, NotFound
from domain.ids import JobId, TenantId
from domain.jobs import Job, JobStatus
from domain.pagination import Page
from domain.queries import JobQuery


class MemoryJobRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def _slug_taken(self, job: Job) -> bool:
        return any(
            other.tenant_id == job.tenant_id and other.slug == job.slug and other.id != job.id
            for other in self._store.jobs.values()
        )

    async def add(self, job: Job) -> None:
        if job.id in self._store.jobs or self._slug_taken(job):
            raise AlreadyExists("job", job.slug)
        self._store.jobs[job.id] = job

    async def get(self, job_id: JobId, *, tenant_id: TenantId | None) -> Job:
        job = self._store.jobs.get(job_id)
        if job is None or (tenant_id is not None and job.tenant_id != tenant_id):
            raise NotFound("job", job_id)
        return job

    async def get_by_slug(self, slug: str, *, tenant_id: TenantId) -> Job:
        for job in self._store.jobs.values():
            if job.tenant_id == tenant_id and job.slug == slug:
                return job
        raise NotFound("job", slug)

    async def update(self, job: Job) -> None:
        await self.get(job.id, tenant_id=job.tenant_id)
        if self._slug_taken(job):
            raise AlreadyExists("job", job.slug)
        self._store.jobs[job.id] = job

    async def list(self, tenant_id: TenantId, query: JobQuery) -> Page[Job]:
        def wanted(job: Job) -> bool:
            if job.tenant_id != tenant_id:
                return False
            if query.status is None:
                if job.status is JobStatus.ARCHIVED:
                    return False
            elif job.status is not query.status:
                return False
            if query.label is not None and job.labels.get(query.label[0]) != query.label[1]:
                return False
            if query.search:
                needle = query.search.casefold()
                if needle not in job.name.casefold() and needle not in job.slug.casefold():
                    return False
            return True

        return paginate(filter(wanted, self._store.jobs.values()), query.page, lambda j: (j.created_at, j.id))
