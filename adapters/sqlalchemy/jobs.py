"""Jobs in the ``jobs`` table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, exists, select, update

from adapters.sqlalchemy.repository import Repository
from adapters.sqlalchemy.tables import jobs
from domain.errors import AlreadyExists, NotFound
from domain.ids import JobId, TenantId
from domain.jobs import Job, JobStatus
from domain.pagination import Page
from domain.queries import JobQuery


def _job_values(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "tenant_id": job.tenant_id,
        "slug": job.slug,
        "name": job.name,
        "description": job.description,
        "status": job.status.value,
        "labels": dict(job.labels),
        "annotations": dict(job.annotations),
        "provenance": job.provenance,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


def _to_job(row: Row[Any]) -> Job:
    return Job(
        id=JobId(row.id),
        tenant_id=TenantId(row.tenant_id),
        slug=row.slug,
        name=row.name,
        description=row.description,
        status=JobStatus(row.status),
        labels=dict(row.labels),
        annotations=dict(row.annotations),
        provenance=row.provenance,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlAlchemyJobRepository(Repository):
    async def add(self, job: Job) -> None:
        stored = await self._execute(
            self._insert_new(jobs, _job_values(job)), unique=lambda: AlreadyExists("job", job.slug)
        )
        if stored.first() is None:
            raise AlreadyExists("job", job.slug)

    async def get(self, job_id: JobId, *, tenant_id: TenantId | None) -> Job:
        statement = select(jobs).where(jobs.c.id == job_id)
        if tenant_id is not None:
            statement = statement.where(jobs.c.tenant_id == tenant_id)
        row = (await self._execute(statement)).first()
        if row is None:
            raise NotFound("job", job_id)
        return _to_job(row)

    async def get_by_slug(self, slug: str, *, tenant_id: TenantId) -> Job:
        statement = select(jobs).where(jobs.c.tenant_id == tenant_id, jobs.c.slug == slug)
        row = (await self._execute(statement)).first()
        if row is None:
            raise NotFound("job", slug)
        return _to_job(row)

    async def update(self, job: Job) -> None:
        other = jobs.alias("other")
        slug_taken = exists().where(other.c.tenant_id == job.tenant_id, other.c.slug == job.slug, other.c.id != job.id)
        values = _job_values(job)
        del values["id"]
        statement = (
            update(jobs)
            .where(jobs.c.id == job.id, jobs.c.tenant_id == job.tenant_id, ~slug_taken)
            .values(values)
            .returning(jobs.c.id)
        )
        stored = await self._execute(statement, unique=lambda: AlreadyExists("job", job.slug))
        if stored.first() is None:
            await self.get(job.id, tenant_id=job.tenant_id)
            raise AlreadyExists("job", job.slug)

    async def list(self, tenant_id: TenantId, query: JobQuery) -> Page[Job]:
        statement = select(jobs).where(jobs.c.tenant_id == tenant_id)
        if query.status is None:
            statement = statement.where(jobs.c.status != JobStatus.ARCHIVED.value)
        else:
            statement = statement.where(jobs.c.status == query.status.value)
        if query.label is not None:
            key, value = query.label
            statement = statement.where(jobs.c.labels[key].as_string() == value)
        if query.search:
            needle = self._fold(query.search)
            statement = statement.where(
                self._folded(jobs.c.name).contains(needle, autoescape=True)
                | self._folded(jobs.c.slug).contains(needle, autoescape=True)
            )
        return await self._page(statement, at=jobs.c.created_at, id=jobs.c.id, page=query.page, to_entity=_to_job)
