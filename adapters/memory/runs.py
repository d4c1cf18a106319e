"""Runs in memory."""

from __future__ import annotations

from adapters.memory.store import MemoryStore, paginate
from domain.errors import AlreadyExists, NotFound
from domain.ids import RunId, TenantId
from domain.pagination import Page
from domain.queries import RunQuery
from domain.runs import Run


class MemoryRunRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def add(self, run: Run) -> None:
        if run.id in self._store.runs:
            raise AlreadyExists("run", run.id)
        if run.endpoint_id not in self._store.endpoints:
            raise NotFound("endpoint", run.endpoint_id)
        for other in self._store.runs.values():
            if other.endpoint_id == run.endpoint_id and other.slot == run.slot:
                raise AlreadyExists("run slot", f"{run.endpoint_id}@{run.slot}")
        self._store.runs[run.id] = run

    async def get(self, run_id: RunId, *, tenant_id: TenantId | None) -> Run:
        run = self._store.runs.get(run_id)
        if run is None or (tenant_id is not None and run.tenant_id != tenant_id):
            raise NotFound("run", run_id)
        return run

    async def update(self, run: Run) -> None:
        await self.get(run.id, tenant_id=run.tenant_id)
        self._store.runs[run.id] = run

    async def list(self, tenant_id: TenantId | None, query: RunQuery) -> Page[Run]:
        def wanted(run: Run) -> bool:
            return (
                (tenant_id is None or run.tenant_id == tenant_id)
                and (query.job_id is None or run.job_id == query.job_id)
                and (query.endpoint_id is None or run.endpoint_id == query.endpoint_id)
                and (query.status is None or run.status is query.status)
                and (query.source is None or run.source is query.source)
                and (query.since is None or run.scheduled_at >= query.since)
                and (query.until is None or run.scheduled_at < query.until)
                and (query.dead_lettered is None or run.dead_lettered == query.dead_lettered)
            )

        return paginate(filter(wanted, self._store.runs.values()), query.page, lambda r: (r.scheduled_at, r.id))
