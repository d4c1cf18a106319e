"""Run use cases: history with filters, details, logs, run now, cancel, dead letters, endpoint health."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain.errors import InvalidTransition, ValidationFailed
from domain.execution import DispatchItem, Dispatcher
from domain.ids import EndpointId, RunId, TenantId, new_id
from domain.endpoints import EndpointStatus
from domain.health import FAILURE_STATUSES, HEALTH_WINDOW, EndpointHealth, finished_window, latest, summarize
from domain.pagination import MAX_LIMIT, Cursor, Page, PageRequest
from domain.ports import Clock, UnitOfWorkFactory
from domain.queries import RunQuery
from domain.run_logs import LogLine
from domain.runs import Run, RunSource, RunStatus, RunView
from services.outcomes import OutcomeRecorder

HEALTH_SCAN_LIMIT = 1000
"""The most runs :meth:`RunsService.health` reads to find the window's finished runs."""


class RunsService:
    def __init__(
        self, *, uow: UnitOfWorkFactory, clock: Clock, dispatcher: Dispatcher | None = None,
        recorder: OutcomeRecorder | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._dispatcher = dispatcher
        self._recorder = recorder

    async def list(self, tenant_id: TenantId, query: RunQuery | None = None) -> Page[Run]:
        """A page of the tenant's runs, newest ``scheduled_at`` first."""
        async with self._uow(read_only=True) as uow:
            return await uow.runs.list(tenant_id, query or RunQuery())

    async def history(self, tenant_id: TenantId, query: RunQuery | None = None) -> Page[RunView]:
        """:meth:`list`'s page as read models, for showing: what the API lists."""
        async with self._uow(read_only=True) as uow:
            return await uow.runs.list_views(tenant_id, query or RunQuery())

    async def get(self, tenant_id: TenantId, run_id: RunId) -> Run:
        async with self._uow(read_only=True) as uow:
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
        """Cancel a pending or running run; a running one is stopped at its worker's next heartbeat.
        A workflow step's job run fails its step (whose ``on_failure`` applies) in the same transaction."""
        settled = None
        async with self._uow() as uow:
            run = (await uow.runs.get(run_id, tenant_id=tenant_id, for_update=True)).cancel(
                at=self._clock.now(), reason=reason
            )
            if run.workflow_run_id is not None and self._recorder is not None:
                # no endpoint is locked (none changes for a canceled run): the lock order holds
                settled = await self._recorder.settle(uow, [run], now=self._clock.now(), locked={})
            else:
                await uow.runs.update(run)
            await uow.commit()
        if settled is not None and self._recorder is not None:
            if settled.follow_ups and self._dispatcher is not None:
                await self._dispatcher.dispatch(settled.follow_ups)
            await self._recorder.after_commit(settled)
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

    async def health(
        self, tenant_id: TenantId, endpoint_id: EndpointId, *, window: int = HEALTH_WINDOW
    ) -> EndpointHealth:
        """How the endpoint's newest ``window`` finished runs went, its last success and failure,
        its runs pending and running now, its dead letters, and its next run; raises ``NotFound``
        for another tenant's endpoint. Counts of pending, running and dead-lettered runs stop at
        500; at most 1,000 of the newest runs are read to fill the window."""
        if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_LIMIT:
            raise ValidationFailed.field("window", f"must be a whole number from 1 to {MAX_LIMIT}")
        async with self._uow() as uow:
            endpoint = await uow.endpoints.get(endpoint_id, tenant_id=tenant_id)

            async def runs(limit: int, cursor: Cursor | None = None, **filters: Any) -> Page[Run]:
                page = PageRequest(limit=limit, cursor=cursor)
                return await uow.runs.list(tenant_id, RunQuery(endpoint_id=endpoint.id, page=page, **filters))

            recent: list[Run] = []
            cursor: Cursor | None = None
            while len(recent) < HEALTH_SCAN_LIMIT:
                page = await runs(min(window, MAX_LIMIT), cursor=cursor)
                recent.extend(page.items)
                if page.next_cursor is None or len(finished_window(recent, window)) >= window:
                    break
                cursor = Cursor.decode(page.next_cursor)
            newest = {status: (await runs(1, status=status)).items for status in (RunStatus.SUCCEEDED, *FAILURE_STATUSES)}
            pending = await runs(MAX_LIMIT, status=RunStatus.PENDING)
            running = await runs(MAX_LIMIT, status=RunStatus.RUNNING)
            dead = await runs(MAX_LIMIT, dead_lettered=True)
        return summarize(
            endpoint,
            recent=recent,
            last_success=latest(newest[RunStatus.SUCCEEDED]),
            last_failure=latest(run for status in FAILURE_STATUSES for run in newest[status]),
            pending=len(pending.items),
            running=len(running.items),
            dead_letters=dead.items,
            now=self._clock.now(),
            window=window,
        )

    async def _store_and_mark(self, uow, run: Run, now) -> None:
        await uow.runs.add(run)
        if self._dispatcher is not None:
            await uow.runs.mark_dispatched([run.id], at=now)

    async def _dispatch(self, run: Run, priority: int) -> None:
        if self._dispatcher is not None:
            await self._dispatcher.dispatch([DispatchItem(run_id=run.id, priority=priority)])
