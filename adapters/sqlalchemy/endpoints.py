"""Endpoints in the ``endpoints`` table, and the scheduler's claim on due ones."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, Row, Select, Table, Update, bindparam, exists, func, or_, select, true, update

from adapters.sqlalchemy.repository import Repository
from adapters.sqlalchemy.trusted import trusted
from adapters.sqlalchemy.tables import endpoints as endpoint_table
from adapters.sqlalchemy.tables import jobs
from domain.endpoints import EndpointStatus, JobEndpoint
from domain.errors import AlreadyExists, NotFound
from domain.hints import IntervalHint, OneShotHint
from domain.ids import EndpointId, JobId, TenantId
from domain.jobs import JobStatus
from domain.pagination import Page
from domain.queries import EndpointQuery
from domain.retry import RetryPolicy
from domain.runs import RunSource
from domain.schedules import CronSchedule, IntervalSchedule, Schedule
from domain.targets import HttpTarget, PythonTarget, Target


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _duration(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _target_values(target: Target) -> dict[str, Any]:
    if isinstance(target, HttpTarget):
        data = {"method": target.method, "url": target.url, "headers": dict(target.headers), "body": target.body}
    else:
        data = {"handler": target.handler, "params": dict(target.params)}
    return {"target_kind": target.kind, "target": data}


def _to_target(kind: str, data: dict[str, Any]) -> Target:
    if kind == "http":
        return HttpTarget(method=data["method"], url=data["url"], headers=data["headers"], body=data["body"])
    return PythonTarget(handler=data["handler"], params=data["params"])


def _schedule_values(schedule: Schedule) -> dict[str, Any]:
    if isinstance(schedule, CronSchedule):
        return {"schedule_cron": schedule.cron, "schedule_timezone": schedule.timezone, "schedule_interval_s": None}
    return {"schedule_cron": None, "schedule_timezone": None, "schedule_interval_s": _seconds(schedule.interval)}


def _to_schedule(row: Row[Any]) -> Schedule:
    if row.schedule_cron is not None:
        return CronSchedule(cron=row.schedule_cron, timezone=row.schedule_timezone)
    return IntervalSchedule(interval=timedelta(seconds=row.schedule_interval_s))


def _endpoint_values(endpoint: JobEndpoint) -> dict[str, Any]:
    interval_hint, oneshot_hint = endpoint.interval_hint, endpoint.oneshot_hint
    return {
        "id": endpoint.id,
        "tenant_id": endpoint.tenant_id,
        "job_id": endpoint.job_id,
        "name": endpoint.name,
        "description": endpoint.description,
        **_target_values(endpoint.target),
        **_schedule_values(endpoint.schedule),
        "min_interval_s": _seconds(endpoint.min_interval),
        "max_interval_s": _seconds(endpoint.max_interval),
        "retry_max_attempts": endpoint.retry.max_attempts,
        "retry_backoff_s": _seconds(endpoint.retry.backoff),
        "retry_backoff_max_s": _seconds(endpoint.retry.backoff_max),
        "retry_jitter": endpoint.retry.jitter,
        "timeout_s": _seconds(endpoint.timeout),
        "priority": endpoint.priority,
        "allow_concurrent": endpoint.allow_concurrent,
        "auto_pause_after": endpoint.auto_pause_after,
        "interval_hint_s": _seconds(interval_hint.interval) if interval_hint else None,
        "interval_hint_expires_at": interval_hint.expires_at if interval_hint else None,
        "interval_hint_reason": interval_hint.reason if interval_hint else None,
        "oneshot_hint_run_at": oneshot_hint.run_at if oneshot_hint else None,
        "oneshot_hint_expires_at": oneshot_hint.expires_at if oneshot_hint else None,
        "oneshot_hint_reason": oneshot_hint.reason if oneshot_hint else None,
        "status": endpoint.status.value,
        "paused_until": endpoint.paused_until,
        "failure_count": endpoint.failure_count,
        "last_run_at": endpoint.last_run_at,
        "next_run_at": endpoint.next_run_at,
        "next_run_source": endpoint.next_run_source.value if endpoint.next_run_source else None,
        "claimed_by": endpoint.claimed_by,
        "lease_expires_at": endpoint.lease_expires_at,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


FIRED_COLUMNS = (
    "id", "next_run_at", "next_run_source", "last_run_at", "interval_hint_s", "interval_hint_expires_at",
    "interval_hint_reason", "oneshot_hint_run_at", "oneshot_hint_expires_at", "oneshot_hint_reason", "claimed_by",
    "lease_expires_at",
)
"""The columns of the fields :meth:`JobEndpoint.fired` changes (``domain.endpoints.FIRED_FIELDS``)."""

_trusted_endpoint = trusted(JobEndpoint)  # the row was written from a validated endpoint (ADR 0013)


def _to_endpoint(row: Row[Any]) -> JobEndpoint:
    interval_hint = None
    if row.interval_hint_s is not None:
        interval_hint = IntervalHint(
            interval=timedelta(seconds=row.interval_hint_s),
            expires_at=row.interval_hint_expires_at,
            reason=row.interval_hint_reason,
        )
    oneshot_hint = None
    if row.oneshot_hint_run_at is not None:
        oneshot_hint = OneShotHint(
            run_at=row.oneshot_hint_run_at, expires_at=row.oneshot_hint_expires_at, reason=row.oneshot_hint_reason
        )
    return _trusted_endpoint(
        id=EndpointId(row.id),
        tenant_id=TenantId(row.tenant_id),
        job_id=JobId(row.job_id) if row.job_id is not None else None,
        name=row.name,
        description=row.description,
        target=_to_target(row.target_kind, row.target),
        schedule=_to_schedule(row),
        min_interval=_duration(row.min_interval_s),
        max_interval=_duration(row.max_interval_s),
        retry=RetryPolicy(
            max_attempts=row.retry_max_attempts,
            backoff=timedelta(seconds=row.retry_backoff_s),
            backoff_max=timedelta(seconds=row.retry_backoff_max_s),
            jitter=row.retry_jitter,
        ),
        timeout=timedelta(seconds=row.timeout_s),
        priority=row.priority,
        allow_concurrent=row.allow_concurrent,
        auto_pause_after=row.auto_pause_after,
        interval_hint=interval_hint,
        oneshot_hint=oneshot_hint,
        status=EndpointStatus(row.status),
        paused_until=row.paused_until,
        failure_count=row.failure_count,
        last_run_at=row.last_run_at,
        next_run_at=row.next_run_at,
        next_run_source=RunSource(row.next_run_source) if row.next_run_source is not None else None,
        claimed_by=row.claimed_by,
        lease_expires_at=row.lease_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _job_active(e: Table, j: Table) -> ColumnElement[bool]:
    """The endpoint has no job, or its job (outer-joined as ``j``) is active."""
    return or_(e.c.job_id.is_(None), j.c.status == JobStatus.ACTIVE.value)


def _claim_order(endpoint: JobEndpoint) -> tuple[int, datetime, str]:
    assert endpoint.next_run_at is not None  # every claimed endpoint was due
    return (-endpoint.priority, endpoint.next_run_at, endpoint.id)


class SqlAlchemyEndpointRepository(Repository):
    def _job_usable(self, endpoint: JobEndpoint) -> ColumnElement[bool]:
        """True when the endpoint has no job or its job exists in the endpoint's tenant."""
        if endpoint.job_id is None:
            return true()
        return exists().where(jobs.c.id == endpoint.job_id, jobs.c.tenant_id == endpoint.tenant_id)

    async def _check_job(self, endpoint: JobEndpoint) -> None:
        if endpoint.job_id is None:
            return
        found = await self._execute(select(self._job_usable(endpoint)))
        if not found.scalar():
            raise NotFound("job", endpoint.job_id)

    async def add(self, endpoint: JobEndpoint) -> None:
        await self._check_job(endpoint)
        stored = await self._execute(
            self._insert_new(endpoint_table, _endpoint_values(endpoint)),
            unique=lambda: AlreadyExists("endpoint", endpoint.name),
            foreign_key=lambda: NotFound("job", endpoint.job_id),
        )
        if stored.first() is None:
            raise AlreadyExists("endpoint", endpoint.name)

    async def get(
        self, endpoint_id: EndpointId, *, tenant_id: TenantId | None, for_update: bool = False
    ) -> JobEndpoint:
        statement = select(endpoint_table).where(endpoint_table.c.id == endpoint_id)
        if tenant_id is not None:
            statement = statement.where(endpoint_table.c.tenant_id == tenant_id)
        if for_update:
            statement = statement.with_for_update(key_share=True)
        row = (await self._execute(statement)).first()
        if row is None:
            raise NotFound("endpoint", endpoint_id)
        return _to_endpoint(row)

    async def update(self, endpoint: JobEndpoint) -> None:
        """One statement when it succeeds; when it changes nothing, a second look says why,
        in the order the in-memory adapter checks: the endpoint, its job, its name."""
        other = endpoint_table.alias("other")
        name_taken = exists().where(
            other.c.tenant_id == endpoint.tenant_id, other.c.name == endpoint.name, other.c.id != endpoint.id
        )
        values = _endpoint_values(endpoint)
        del values["id"]
        statement = (
            update(endpoint_table)
            .where(
                endpoint_table.c.id == endpoint.id,
                endpoint_table.c.tenant_id == endpoint.tenant_id,
                self._job_usable(endpoint),
                ~name_taken,
            )
            .values(values)
            .returning(endpoint_table.c.id)
        )
        stored = await self._execute(
            statement,
            unique=lambda: AlreadyExists("endpoint", endpoint.name),
            foreign_key=lambda: NotFound("job", endpoint.job_id),
        )
        if stored.first() is None:
            await self.get(endpoint.id, tenant_id=endpoint.tenant_id)
            await self._check_job(endpoint)
            raise AlreadyExists("endpoint", endpoint.name)

    async def list(self, tenant_id: TenantId, query: EndpointQuery) -> Page[JobEndpoint]:
        statement = select(endpoint_table).where(endpoint_table.c.tenant_id == tenant_id)
        if query.job_id is not None:
            statement = statement.where(endpoint_table.c.job_id == query.job_id)
        if query.status is None:
            statement = statement.where(endpoint_table.c.status != EndpointStatus.ARCHIVED.value)
        else:
            statement = statement.where(endpoint_table.c.status == query.status.value)
        return await self._page(
            statement, at=endpoint_table.c.created_at, id=endpoint_table.c.id, page=query.page, to_entity=_to_endpoint
        )

    async def get_many(
        self, endpoint_ids: Sequence[EndpointId], *, for_update: bool = False
    ) -> dict[EndpointId, JobEndpoint]:
        """With ``for_update``, PostgreSQL locks the rows in id order (so two callers cannot
        deadlock on them) with ``FOR NO KEY UPDATE``, which still lets runs referencing them be
        inserted. SQLite needs no row locks: the transaction holds the database's write lock."""
        if not endpoint_ids:
            return {}
        statement = select(endpoint_table).where(self._in(endpoint_table.c.id, endpoint_ids)).order_by(endpoint_table.c.id)
        if for_update:
            statement = statement.with_for_update(key_share=True)
        found = {row.id: _to_endpoint(row) for row in await self._execute(statement)}
        self._remember(endpoint_table, {e.id: e.tenant_id for e in found.values()})
        return {endpoint_id: found[endpoint_id] for endpoint_id in endpoint_ids if endpoint_id in found}

    async def update_many(self, endpoints: Sequence[JobEndpoint]) -> None:
        """Two lookups and one batched UPDATE, with the checks of :meth:`update` in its order;
        an endpoint whose name changes takes the one-by-one path, which checks the name."""
        e = endpoint_table
        stored = await self._execute(
            select(e.c.id, e.c.tenant_id, e.c.name, e.c.job_id, jobs.c.tenant_id.label("job_tenant_id"))
            .select_from(e.outerjoin(jobs, jobs.c.id == e.c.job_id))
            .where(self._in(e.c.id, (endpoint.id for endpoint in endpoints)))
        )
        known: dict[str, tuple[str, str]] = {}
        job_tenants: dict[str, str] = {}
        for row in stored:
            known[row.id] = (row.tenant_id, row.name)
            if row.job_id is not None and row.job_tenant_id is not None:
                job_tenants[row.job_id] = row.job_tenant_id
        # jobs the endpoints move to (rare): looked up on their own
        moved = {ep.job_id for ep in endpoints if ep.job_id is not None and ep.job_id not in job_tenants}
        job_tenants.update(await self._tenants_of(jobs, moved))
        batch: list[dict[str, Any]] = []
        for endpoint in endpoints:
            if known.get(endpoint.id, (None, None))[0] != endpoint.tenant_id:
                raise NotFound("endpoint", endpoint.id)
            if endpoint.job_id is not None and job_tenants.get(endpoint.job_id) != endpoint.tenant_id:
                raise NotFound("job", endpoint.job_id)
            if known[endpoint.id][1] == endpoint.name:
                batch.append(_endpoint_values(endpoint))
            else:
                await self.update(endpoint)
        await self._update_by_id(endpoint_table, batch)

    async def store_fired(self, endpoints: Sequence[JobEndpoint]) -> None:
        """The columns of :data:`FIRED_COLUMNS`, in one batched statement. An endpoint not stored
        (or of another tenant) raises ``NotFound``; those this transaction claimed are known
        without a lookup, and firing changes nothing else that needs a check."""
        if not endpoints:
            return
        tenants = await self._tenants_of(endpoint_table, {endpoint.id for endpoint in endpoints})
        for endpoint in endpoints:
            if tenants.get(endpoint.id) != endpoint.tenant_id:
                raise NotFound("endpoint", endpoint.id)
        rows = []
        for endpoint in endpoints:
            values = _endpoint_values(endpoint)
            rows.append({name: values[name] for name in FIRED_COLUMNS})
        await self._update_by_id(endpoint_table, rows)

    async def next_due_at(self) -> datetime | None:
        return (await self._execute(_next_due_statement())).scalar()

    async def claim_due(self, now: datetime, limit: int, lease: timedelta, owner: str) -> Sequence[JobEndpoint]:
        """One statement: lock the due rows, lease them, return them.

        PostgreSQL skips rows another claimer has locked (``SKIP LOCKED``) and re-checks the
        rest once locked, so a lease committed meanwhile is seen. The lock is ``FOR NO KEY
        UPDATE``: it excludes other claimers exactly as ``FOR UPDATE`` would, but does not
        block inserting runs that reference the endpoint. SQLite ignores the locking clause;
        there the transaction already holds the write lock (``BEGIN IMMEDIATE``).
        """
        if limit <= 0:
            return []
        parameters = {"now": now, "limit": limit, "owner": owner, "until": now + lease}
        claimed = [_to_endpoint(row) for row in (await self._execute(_claim_statement(), parameters)).all()]
        self._remember(endpoint_table, {e.id: e.tenant_id for e in claimed})
        return sorted(claimed, key=_claim_order)


@functools.cache
def _next_due_statement() -> Select[Any]:
    e, j = endpoint_table, jobs
    return (
        select(func.min(e.c.next_run_at))
        .select_from(e.outerjoin(j, j.c.id == e.c.job_id))
        .where(e.c.status == EndpointStatus.ACTIVE.value, _job_active(e, j))
    )


@functools.cache
def _claim_statement() -> Update:
    """The claim of :meth:`SqlAlchemyEndpointRepository.claim_due`, built once: bound ``now``,
    ``limit``, ``owner`` and ``until`` (the lease's end)."""
    e, j = endpoint_table, jobs
    now = bindparam("now", type_=e.c.next_run_at.type)
    due = (
        select(e.c.id)
        .select_from(e.outerjoin(j, j.c.id == e.c.job_id))
        .where(
            e.c.status == EndpointStatus.ACTIVE.value,
            e.c.next_run_at <= now,
            or_(e.c.paused_until.is_(None), e.c.paused_until <= now),
            _job_active(e, j),
            or_(e.c.lease_expires_at.is_(None), e.c.lease_expires_at <= now),
        )
        .order_by(e.c.priority.desc(), e.c.next_run_at, e.c.id)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(of=e, skip_locked=True, key_share=True)
    )
    return (
        update(e)
        .where(e.c.id.in_(due))
        .values(claimed_by=bindparam("owner"), lease_expires_at=bindparam("until", type_=e.c.lease_expires_at.type))
        .returning(*e.c)
    )
