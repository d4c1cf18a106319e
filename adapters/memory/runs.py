"""Runs in memory."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapters.memory.store import MemoryStore, paginate
from domain.errors import AlreadyExists, NotFound
from domain.ids import EndpointId, RunId, TenantId
from domain.pagination import Page
from domain.queries import RunQuery
from domain.runs import Run, RunStatus, RunView


class MemoryRunRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def add(self, run: Run) -> None:
        if run.id in self._store.runs:
            raise AlreadyExists("run", run.id)
        if run.endpoint_id is not None and run.endpoint_id not in self._store.endpoints:
            raise NotFound("endpoint", run.endpoint_id)
        for other in self._store.runs.values():
            if other.endpoint_id == run.endpoint_id and other.slot == run.slot:
                raise AlreadyExists("run slot", f"{run.endpoint_id}@{run.slot}")
        self._store.runs[run.id] = run

    async def get(self, run_id: RunId, *, tenant_id: TenantId | None, for_update: bool = False) -> Run:
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

    async def list_views(self, tenant_id: TenantId | None, query: RunQuery) -> Page[RunView]:
        page = await self.list(tenant_id, query)
        return Page(items=[RunView.of(run) for run in page.items], next_cursor=page.next_cursor)

    async def add_new(self, runs: Sequence[Run]) -> Sequence[Run]:
        taken = {(r.endpoint_id, r.slot) for r in self._store.runs.values()}
        stored: list[Run] = []
        for run in runs:
            key = (run.endpoint_id, run.slot)
            if key in taken:
                continue
            await self.add(run)
            taken.add(key)
            stored.append(run)
        return stored

    async def update_many(self, runs: Sequence[Run]) -> None:
        for run in runs:
            await self.update(run)

    async def start(self, run_ids: Sequence[RunId], *, at: datetime, worker: str) -> Sequence[Run]:
        busy = {
            r.endpoint_id for r in self._store.runs.values() if r.status is RunStatus.RUNNING and r.exclusive
        }
        started: list[Run] = []
        for run_id in dict.fromkeys(run_ids):
            run = self._store.runs.get(run_id)
            if run is None or run.status is not RunStatus.PENDING:
                continue
            if run.exclusive and run.endpoint_id in busy:
                continue
            running = run.start(at=at, worker=worker)
            self._store.runs[run_id] = running
            if run.exclusive:
                busy.add(run.endpoint_id)
            started.append(running)
        return started

    async def beat(self, run_ids: Sequence[RunId], *, at: datetime) -> Sequence[RunId]:
        gone: list[RunId] = []
        for run_id in run_ids:
            run = self._store.runs.get(run_id)
            if run is not None and run.status is RunStatus.RUNNING:
                self._store.runs[run_id] = run.beat(at=at)
            else:
                gone.append(run_id)
        return gone

    async def get_many(self, run_ids: Sequence[RunId], *, for_update: bool = False) -> dict[RunId, Run]:
        return {rid: self._store.runs[rid] for rid in run_ids if rid in self._store.runs}

    async def next_pending_at(self) -> datetime | None:
        waiting = [
            r.scheduled_at for r in self._store.runs.values()
            if r.status is RunStatus.PENDING and r.dispatched_at is None
        ]
        return min(waiting, default=None)

    async def mark_dispatched(self, run_ids: Sequence[RunId], *, at: datetime) -> None:
        for run_id in run_ids:
            run = self._store.runs.get(run_id)
            if run is not None and run.status is RunStatus.PENDING:
                self._store.runs[run_id] = run.dispatched(at=at)

    async def to_dispatch(self, *, now: datetime, dispatched_before: datetime | None, limit: int) -> Sequence[Run]:
        due = [
            r for r in self._store.runs.values()
            if r.status is RunStatus.PENDING
            and r.scheduled_at <= now
            and (r.dispatched_at is None or (dispatched_before is not None and r.dispatched_at < dispatched_before))
        ]
        due.sort(key=lambda r: (r.scheduled_at, r.id))
        return due[:limit]

    async def stale_running(self, *, heartbeat_before: datetime, limit: int) -> Sequence[Run]:
        stale = [
            r for r in self._store.runs.values()
            if r.status is RunStatus.RUNNING and (r.heartbeat_at or r.started_at or r.created_at) < heartbeat_before
        ]
        stale.sort(key=lambda r: (r.heartbeat_at or r.created_at, r.id))
        return stale[:limit]

    async def oldest_pending(self, endpoint_ids: Sequence[EndpointId], *, now: datetime) -> Sequence[Run]:
        wanted = set(endpoint_ids)
        oldest: dict[EndpointId, Run] = {}
        for run in self._store.runs.values():
            if run.endpoint_id in wanted and run.status is RunStatus.PENDING and run.scheduled_at <= now:
                best = oldest.get(run.endpoint_id)
                if best is None or (run.scheduled_at, run.id) < (best.scheduled_at, best.id):
                    oldest[run.endpoint_id] = run
        return sorted(oldest.values(), key=lambda r: (r.scheduled_at, r.id))
