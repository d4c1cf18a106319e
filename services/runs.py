"""Run use cases: list with filters and keyset pagination, run details."""

from __future__ import annotations

from domain.ids import RunId, TenantId
from domain.pagination import Page
from domain.ports import Clock, UnitOfWorkFactory
from domain.queries import RunQuery
from domain.runs import Run


class RunsService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def list(self, tenant_id: TenantId, query: RunQuery | None = None) -> Page[Run]:
        """A page of the tenant's runs, newest ``scheduled_at`` first."""
        async with self._uow() as uow:
            return await uow.runs.list(tenant_id, query or RunQuery())

    async def get(self, tenant_id: TenantId, run_id: RunId) -> Run:
        async with self._uow() as uow:
            return await uow.runs.get(run_id, tenant_id=tenant_id)
