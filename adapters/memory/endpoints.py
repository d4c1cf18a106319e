"""Endpoints in memory."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from attrs import evolve

from adapters.memory.store import MemoryStore, paginate
from domain.endpoints import FIRED_FIELDS, EndpointStatus, JobEndpoint
from domain.errors import AlreadyExists, NotFound
from domain.ids import EndpointId, TenantId
from domain.jobs import JobStatus
from domain.pagination import Page
from domain.queries import EndpointQuery


class MemoryEndpointRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def _name_taken(self, endpoint: JobEndpoint) -> bool:
        return any(
            other.tenant_id == endpoint.tenant_id and other.name == endpoint.name and other.id != endpoint.id
            for other in self._store.endpoints.values()
        )

    def _check_job(self, endpoint: JobEndpoint) -> None:
        if endpoint.job_id is None:
            return
        job = self._store.jobs.get(endpoint.job_id)
        if job is None or job.tenant_id != endpoint.tenant_id:
            raise NotFound("job", endpoint.job_id)

    async def add(self, endpoint: JobEndpoint) -> None:
        self._check_job(endpoint)
        if endpoint.id in self._store.endpoints or self._name_taken(endpoint):
            raise AlreadyExists("endpoint", endpoint.name)
        self._store.endpoints[endpoint.id] = endpoint

    async def get(
        self, endpoint_id: EndpointId, *, tenant_id: TenantId | None, for_update: bool = False
    ) -> JobEndpoint:
        endpoint = self._store.endpoints.get(endpoint_id)
        if endpoint is None or (tenant_id is not None and endpoint.tenant_id != tenant_id):
            raise NotFound("endpoint", endpoint_id)
        return endpoint

    async def update(self, endpoint: JobEndpoint) -> None:
        await self.get(endpoint.id, tenant_id=endpoint.tenant_id)
        self._check_job(endpoint)
        if self._name_taken(endpoint):
            raise AlreadyExists("endpoint", endpoint.name)
        self._store.endpoints[endpoint.id] = endpoint

    async def list(self, tenant_id: TenantId, query: EndpointQuery) -> Page[JobEndpoint]:
        def wanted(endpoint: JobEndpoint) -> bool:
            if endpoint.tenant_id != tenant_id:
                return False
            if query.job_id is not None and endpoint.job_id != query.job_id:
                return False
            if query.status is None:
                return endpoint.status is not EndpointStatus.ARCHIVED
            return endpoint.status is query.status

        return paginate(filter(wanted, self._store.endpoints.values()), query.page, lambda e: (e.created_at, e.id))

    async def get_many(
        self, endpoint_ids: Sequence[EndpointId], *, for_update: bool = False
    ) -> dict[EndpointId, JobEndpoint]:
        return {eid: self._store.endpoints[eid] for eid in endpoint_ids if eid in self._store.endpoints}

    async def update_many(self, endpoints: Sequence[JobEndpoint]) -> None:
        for endpoint in endpoints:
            await self.update(endpoint)

    async def store_fired(self, endpoints: Sequence[JobEndpoint]) -> None:
        for endpoint in endpoints:
            stored = self._store.endpoints.get(endpoint.id)
            if stored is None or stored.tenant_id != endpoint.tenant_id:
                raise NotFound("endpoint", endpoint.id)
            self._store.endpoints[endpoint.id] = evolve(stored, **{name: getattr(endpoint, name) for name in FIRED_FIELDS})

    def _job_active(self, endpoint: JobEndpoint) -> bool:
        if endpoint.job_id is None:
            return True
        job = self._store.jobs.get(endpoint.job_id)
        return job is not None and job.status is JobStatus.ACTIVE

    async def next_due_at(self) -> datetime | None:
        due = [
            e.next_run_at for e in self._store.endpoints.values()
            if e.status is EndpointStatus.ACTIVE and e.next_run_at is not None and self._job_active(e)
        ]
        return min(due, default=None)

    async def claim_due(self, now: datetime, limit: int, lease: timedelta, owner: str) -> Sequence[JobEndpoint]:
        due = [e for e in self._store.endpoints.values() if e.is_due(now) and self._job_active(e)]
        due.sort(key=lambda e: (-e.priority, e.next_run_at, e.id))
        claimed = [e.claimed(owner=owner, until=now + lease) for e in due[: max(limit, 0)]]
        for endpoint in claimed:
            self._store.endpoints[endpoint.id] = endpoint
        return claimed
