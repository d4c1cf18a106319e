"""Run use cases: history with filters, details, logs, run now, cancel, dead letters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain.errors import InvalidTransition, ValidationFailed
from domain.execution import DispatchItem, Dispatcher
from domain.ids import EndpointId, RunId, TenantId, new_id
from domain.endpoints import EndpointStatus
from domain.pagination import Page
from domain.ports import Clock, UnitOfWorkFactory
from domain.queries import RunQuery
from domain.run_logs import LogLine
from domain.runs import Run, RunSource


class RunsService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, dispatcher: Dispatcher | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._dispatcher = dispatcher

    async def list(self, tenant_id: TenantId, query: RunQuery | None = None) -> Page[Run]:
        """A page of the tenant's runs, newest ``scheduled_at`` first."""
        async with self._uow() as uow:
            return await uow.runs.list(tenant_id, query or RunQuery())

    async def get(self, tenant_id: TenantId, run_id: RunId) -> Run:
        async with self._uow() as uow:
            return await uow.runs.get(run_id, tenant_id=tenant_id)

    async def logs(self, tenant_id: TenantId, run_id: RunId) -> Sequence[LogLine]:
        """The lines the run logged, in order; raises ``NotFound`` for another tenant's run."""
        async with self._uow() as uow:
            return await uow.run_logs.list(run_id, tenant_id=tenant_id)

    async def run_now(
        self, tenant_id: TenantId, endpoint_id: EndpointId, params: Mapping[str, Any] | None = None
    ) -> Run:
        """Run an endpoint now (source ``manual``); ``params`` override the target's for this run only."""
        if params is not None and not isinstance(params, Mapping):
            raise ValidationFailed.field("params", "must be an object")
        now = self._clock.now()
        async with self._uow() as uow:
            endpoint = await uow.endpoints.get(endpoint_id, tenant_id=tenant_id)
            if endpoint.status is EndpointStatus.ARCHIVED:
                raise InvalidTransition(f"endpoint {endpoint.name} is archived")
            run = Run.scheduled(  # a slot of its own: manual runs never collide with scheduled ones
                tenant_id=tenant_id, endpoint_id=endpoint.id, job_id=endpoint.job_id, source=RunSource.MANUAL,
                scheduled_at=now, now=now, params=dict(params or {}), exclusive=not endpoint.allow_concurrent,
                slot=f"manual:{new_id()}",
            )
            await self._store_and_mark(uow, run, now)
            await uow.commit()
        await self._dispatch(run, endpoint.priority)
        return run

    async def cancel(self, tenant_id: TenantId, run_id: RunId, *, reason: str = "canceled by an operator") -> Run:
        """Cancel a pending or running run; a running one is stopped at its worker's next heartbeat."""
        async with self._uow() as uow:
            run = (await uow.runs.get(run_id, tenant_id=tenant_id, for_update=True)).cancel(
                at=self._clock.now(), reason=reason
            )
            await uow.runs.update(run)
            await uow.commit()
        return run

    async def dead_letters(self, tenant_id: TenantId, query: RunQuery | None = None) -> Page[Run]:
        """Runs that used their last attempt and still failed, newest first."""
        query = query or RunQuery()
        async with self._uow() as uow:
            return await uow.runs.list(
                tenant_id,
                RunQuery(
                    job_id=query.job_id, endpoint_id=query.endpoint_id, status=query.status, source=query.source,
                    since=query.since, until=query.until, dead_lettered=True, page=query.page,
                ),
            )

    async def retry_dead_letter(self, tenant_id: TenantId, run_id: RunId) -> Run:
        """Give a dead-lettered run a fresh attempt budget: a new pending run (source ``retry``) now."""
        now = self._clock.now()
        async with self._uow() as uow:
            dead = await uow.runs.get(run_id, tenant_id=tenant_id, for_update=True)
            if not dead.dead_lettered:
                raise InvalidTransition(f"run {run_id} is not a dead letter (or was retried already)")
            endpoint = await uow.endpoints.get(dead.endpoint_id, tenant_id=tenant_id)
            run = Run.scheduled(
                tenant_id=tenant_id, endpoint_id=dead.endpoint_id, job_id=dead.job_id, source=RunSource.RETRY,
                scheduled_at=now, now=now, params=dead.params, slot=f"redrive:{new_id()}",
                retry_of=dead.id, exclusive=dead.exclusive,
            )
            await self._store_and_mark(uow, run, now)
            await uow.runs.update(dead.redriven())  # out of the dead letters; the new run's retry_of points back
            await uow.commit()
        await self._dispatch(run, endpoint.priority)
        return run

    async def _store_and_mark(self, uow, run: Run, now) -> None:
        await uow.runs.add(run)
        if self._dispatcher is not None:
            await uow.runs.mark_dispatched([run.id], at=now)

    async def _dispatch(self, run: Run, priority: int) -> None:
        if self._dispatcher is not None:
            await self._dispatcher.dispatch([DispatchItem(run_id=run.id, priority=priority)])
