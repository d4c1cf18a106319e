"""Runs in the ``runs`` table."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Integer, Row, Select, bindparam, exists, func, literal, select, true, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from adapters.sqlalchemy.repository import Repository, in_parameter, keyset_page
from adapters.sqlalchemy.tables import endpoints as endpoint_table
from adapters.sqlalchemy.tables import runs as run_table
from adapters.sqlalchemy.trusted import trusted
from domain.errors import AlreadyExists, NotFound
from domain.ids import EndpointId, RunId, TenantId
from domain.pagination import Page
from domain.queries import RunQuery
from domain.runs import Run, RunResult, RunSource, RunStatus, RunView, duration_ms
from domain.specs import parse_task, task_spec


def _run_values(run: Run) -> dict[str, Any]:
    result = run.result
    duration_ms = run.duration_ms
    return {
        "id": run.id,
        "tenant_id": run.tenant_id,
        "endpoint_id": run.endpoint_id,
        "step_key": run.step_key,
        "task": task_spec(run.task) if run.task is not None else None,
        "job_id": run.job_id,
        "workflow_run_id": run.workflow_run_id,
        "status": run.status.value,
        "source": run.source.value,
        "slot": run.slot,
        "attempt": run.attempt,
        "params": dict(run.params),
        "scheduled_at": run.scheduled_at,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "heartbeat_at": run.heartbeat_at,
        "duration_s": None if duration_ms is None else duration_ms / 1000,
        "has_result": result is not None,
        "status_code": result.status_code if result else None,
        "body_excerpt": result.body_excerpt if result else None,
        "output": result.output if result else None,
        "error": run.error,
        "worker_id": run.worker_id,
        "retry_of": run.retry_of,
        "dead_lettered": run.dead_lettered,
        "exclusive": run.exclusive,
        "dispatched_at": run.dispatched_at,
    }


_c = run_table.c
RUN_COLUMNS = (
    _c.id, _c.tenant_id, _c.endpoint_id, _c.job_id, _c.workflow_run_id, _c.step_key, _c.task, _c.status, _c.source,
    _c.slot, _c.attempt, _c.params, _c.scheduled_at, _c.created_at, _c.started_at, _c.finished_at, _c.heartbeat_at,
    _c.has_result, _c.status_code, _c.body_excerpt, _c.output, _c.error, _c.worker_id, _c.retry_of, _c.dead_lettered,
    _c.exclusive, _c.dispatched_at,
)
"""The columns :func:`_to_run` reads, in its order: statements that read runs select these."""

T = TypeVar("T")

_trusted_run = trusted(Run)
_trusted_result = trusted(RunResult)
_STATUSES = {status.value: status for status in RunStatus}
_SOURCES = {source.value: source for source in RunSource}


def _to_run(row: Row[Any]) -> Run:
    """The run stored in ``row`` (a row of :data:`RUN_COLUMNS`), unpacked by position and built
    without validating again what was validated when it was written (see ``trusted``)."""
    (
        run_id, tenant_id, endpoint_id, job_id, workflow_run_id, step_key, task, status, source, slot, attempt, params,
        scheduled_at, created_at, started_at, finished_at, heartbeat_at, has_result, status_code, body_excerpt, output,
        error, worker_id, retry_of, dead_lettered, exclusive, dispatched_at,
    ) = row
    return _trusted_run(
        id=run_id,
        tenant_id=tenant_id,
        endpoint_id=endpoint_id,
        step_key=step_key,
        task=parse_task(task) if task is not None else None,
        job_id=job_id,
        workflow_run_id=workflow_run_id,
        status=_STATUSES[status],
        source=_SOURCES[source],
        slot=slot,
        attempt=attempt,
        params=params,
        scheduled_at=scheduled_at,
        created_at=created_at,
        started_at=started_at,
        finished_at=finished_at,
        heartbeat_at=heartbeat_at,
        result=_trusted_result(status_code=status_code, body_excerpt=body_excerpt, output=output) if has_result else None,
        error=error,
        worker_id=worker_id,
        retry_of=retry_of,
        dead_lettered=dead_lettered,
        exclusive=exclusive,
        dispatched_at=dispatched_at,
    )


VIEW_COLUMNS = (
    _c.id, _c.endpoint_id, _c.job_id, _c.workflow_run_id, _c.step_key, _c.status, _c.source, _c.attempt, _c.params,
    _c.scheduled_at, _c.created_at, _c.started_at, _c.finished_at, _c.has_result, _c.status_code, _c.body_excerpt,
    _c.output, _c.error, _c.worker_id, _c.retry_of, _c.dead_lettered,
)
"""The columns :func:`_to_view` reads, in its order."""
_VIEW_KEY = operator.itemgetter(9, 0)
"""A view row's ``(scheduled_at, id)``, by position (asyncpg's records have no attributes)."""


def _to_view(row: Row[Any]) -> RunView:
    """The read model of the run stored in ``row`` (a row of :data:`VIEW_COLUMNS`), by position."""
    (
        run_id, endpoint_id, job_id, workflow_run_id, step_key, status, source, attempt, params, scheduled_at,
        created_at, started_at, finished_at, has_result, status_code, body_excerpt, output, error, worker_id, retry_of,
        dead_lettered,
    ) = row
    return RunView(
        run_id, endpoint_id, job_id, workflow_run_id, step_key, _STATUSES[status], _SOURCES[source], attempt, params,
        scheduled_at, created_at, started_at, finished_at, duration_ms(started_at, finished_at),
        _trusted_result(status_code=status_code, body_excerpt=body_excerpt, output=output) if has_result else None,
        error, worker_id, retry_of, dead_lettered,
    )


_LIST_FILTERS = {
    "tenant_id": (_c.tenant_id, operator.eq),
    "job_id": (_c.job_id, operator.eq),
    "endpoint_id": (_c.endpoint_id, operator.eq),
    "status": (_c.status, operator.eq),
    "source": (_c.source, operator.eq),
    "since": (_c.scheduled_at, operator.ge),
    "until": (_c.scheduled_at, operator.lt),
}
"""The list's filters: the column each compares, and how."""


@functools.cache
def _list_statement(bound: frozenset[str], dead_lettered: bool | None, views: bool = False) -> Select[Any]:
    """The list query with a condition for each filter named in ``bound`` (``cursor_at``: after
    the cursor), built and compiled once per combination; values come as bound parameters of
    the same names, and ``limit``. Building the statement and its cache key for each request
    added about half again to the CPU time of running it. ``views``: it selects
    :data:`VIEW_COLUMNS` instead of :data:`RUN_COLUMNS`."""
    statement = select(*(VIEW_COLUMNS if views else RUN_COLUMNS))
    for name, (column, compare) in _LIST_FILTERS.items():
        if name in bound:
            statement = statement.where(compare(column, bindparam(name, type_=column.type)))
    if dead_lettered is not None:
        statement = statement.where(_c.dead_lettered.is_(dead_lettered))
    if "cursor_at" in bound:
        statement = statement.where(
            tuple_(_c.scheduled_at, _c.id)
            < tuple_(bindparam("cursor_at", type_=_c.scheduled_at.type), bindparam("cursor_id", type_=_c.id.type))
        )
    return statement.order_by(_c.scheduled_at.desc(), _c.id.desc()).limit(bindparam("limit", type_=Integer()))


class SqlAlchemyRunRepository(Repository):
    async def add(self, run: Run) -> None:
        """One statement that stores the run only if its endpoint exists and neither its id nor its
        slot is taken. A refused row is never a failed statement (which would abort a PostgreSQL
        transaction); a second look then names the reason, in the in-memory adapter's order."""
        values = _run_values(run)
        row = select(*(literal(value, run_table.c[name].type) for name, value in values.items()))
        if run.endpoint_id is not None:
            row = row.where(exists().where(endpoint_table.c.id == run.endpoint_id))
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        statement = dialect.insert(run_table).from_select(list(values), row).on_conflict_do_nothing().returning(run_table.c.id)
        stored = await self._execute(
            statement,
            unique=lambda: AlreadyExists("run slot", f"{run.endpoint_id}@{run.slot}"),
            foreign_key=lambda: NotFound("endpoint", run.endpoint_id),
        )
        if stored.first() is not None:
            self._remember(run_table, {run.id: run.tenant_id})
            return
        if (await self._execute(select(exists().where(run_table.c.id == run.id)))).scalar():
            raise AlreadyExists("run", run.id)
        if run.endpoint_id is not None and not (
            await self._execute(select(exists().where(endpoint_table.c.id == run.endpoint_id)))
        ).scalar():
            raise NotFound("endpoint", run.endpoint_id)
        raise AlreadyExists("run slot", f"{run.endpoint_id or run.workflow_run_id}@{run.slot}")

    async def get(self, run_id: RunId, *, tenant_id: TenantId | None, for_update: bool = False) -> Run:
        statement = select(*RUN_COLUMNS).where(run_table.c.id == run_id)
        if tenant_id is not None:
            statement = statement.where(run_table.c.tenant_id == tenant_id)
        if for_update:
            statement = statement.with_for_update(key_share=True)
        row = (await self._execute(statement)).first()
        if row is None:
            raise NotFound("run", run_id)
        self._remember(run_table, {row.id: row.tenant_id})
        return _to_run(row)

    async def update(self, run: Run) -> None:
        values = _run_values(run)
        del values["id"]
        statement = (
            update(run_table)
            .where(run_table.c.id == run.id, run_table.c.tenant_id == run.tenant_id)
            .values(values)
            .returning(run_table.c.id)
        )
        stored = await self._execute(statement, unique=lambda: AlreadyExists("run slot", f"{run.endpoint_id}@{run.slot}"))
        if stored.first() is None:
            raise NotFound("run", run.id)

    async def list(self, tenant_id: TenantId | None, query: RunQuery) -> Page[Run]:
        """Newest ``scheduled_at`` first, keyset-paginated; one prepared statement per combination
        of filters (see :func:`_list_statement`), the values bound at execution."""
        return await self._list(tenant_id, query, _to_run, views=False)

    async def list_views(self, tenant_id: TenantId | None, query: RunQuery) -> Page[RunView]:
        """:meth:`list`'s page as read models: the same statement, selecting only what a view shows."""
        return await self._list(tenant_id, query, _to_view, views=True)

    async def _list(
        self, tenant_id: TenantId | None, query: RunQuery, to_item: Callable[[Row[Any]], T], *, views: bool
    ) -> Page[T]:
        filters = {
            "tenant_id": tenant_id,
            "job_id": query.job_id,
            "endpoint_id": query.endpoint_id,
            "status": query.status.value if query.status is not None else None,
            "source": query.source.value if query.source is not None else None,
            "since": query.since,
            "until": query.until,
        }
        values = {name: value for name, value in filters.items() if value is not None}
        page = query.page
        if page.cursor is not None:
            values["cursor_at"], values["cursor_id"] = page.cursor.at, page.cursor.id
        values["limit"] = page.limit + 1
        statement = _list_statement(frozenset(values), query.dead_lettered, views)
        if views:
            rows = await self._read_on_driver(statement, values)
            if rows is not None:
                return keyset_page(rows, page, to_item, _VIEW_KEY)
        rows = (await self._execute(statement, values)).all()
        return keyset_page(rows, page, to_item, lambda row: (row.scheduled_at, row.id))

    async def add_new(self, runs: Sequence[Run]) -> Sequence[Run]:
        """One multi-row INSERT that skips taken slots. A run skipped although its slot is free
        had its id taken, which :meth:`add` refuses, and so does this."""
        if not runs:
            return []
        # endpoints this transaction has read (the scheduler's claim) are not looked up again
        present = await self._tenants_of(endpoint_table, {run.endpoint_id for run in runs if run.endpoint_id is not None})
        for run in runs:
            if run.endpoint_id is not None and run.endpoint_id not in present:
                raise NotFound("endpoint", run.endpoint_id)
        stored_ids = await self._insert_many_new(run_table, [_run_values(run) for run in runs], returning=run_table.c.id)
        stored = [run for run in runs if run.id in stored_ids]
        self._remember(run_table, {run.id: run.tenant_id for run in stored})
        skipped = [run for run in runs if run.id not in stored_ids]
        if skipped:
            # a skipped run lost to a taken slot: (endpoint, slot), or (workflow run, slot) for task runs
            keys = {(run.endpoint_id, run.slot) for run in skipped if run.endpoint_id is not None}
            task_keys = {(run.workflow_run_id, run.slot) for run in skipped if run.endpoint_id is None}
            held: set[tuple[Any, str]] = set()
            if keys:
                taken = await self._execute(
                    select(run_table.c.endpoint_id, run_table.c.slot).where(
                        tuple_(run_table.c.endpoint_id, run_table.c.slot).in_(keys)
                    )
                )
                held |= {(row.endpoint_id, row.slot) for row in taken}
            if task_keys:
                taken = await self._execute(
                    select(run_table.c.workflow_run_id, run_table.c.slot).where(
                        tuple_(run_table.c.workflow_run_id, run_table.c.slot).in_(task_keys)
                    )
                )
                held |= {(row.workflow_run_id, row.slot) for row in taken}
            for run in skipped:
                key = (run.endpoint_id, run.slot) if run.endpoint_id is not None else (run.workflow_run_id, run.slot)
                if key not in held:
                    raise AlreadyExists("run", run.id)
        return stored

    async def update_many(self, runs: Sequence[Run]) -> None:
        """Checks the runs exist with their tenants: a lookup only of runs this transaction has
        not read or stored (runs are never deleted and never change tenant)."""
        tenants = await self._tenants_of(run_table, {run.id for run in runs})
        for run in runs:
            if tenants.get(run.id) != run.tenant_id:
                raise NotFound("run", run.id)
        await self._update_by_id(run_table, [_run_values(run) for run in runs])

    async def get_many(self, run_ids: Sequence[RunId], *, for_update: bool = False) -> dict[RunId, Run]:
        if not run_ids:
            return {}
        statement = select(*RUN_COLUMNS).where(self._in(run_table.c.id, run_ids)).order_by(run_table.c.id)
        if for_update:
            statement = statement.with_for_update(key_share=True)
        rows = await self._execute(statement)
        found = {row.id: _to_run(row) for row in rows}
        self._remember(run_table, {run.id: run.tenant_id for run in found.values()})
        return {run_id: found[run_id] for run_id in run_ids if run_id in found}

    async def next_pending_at(self) -> datetime | None:
        return (await self._execute(_next_pending_statement())).scalar()

    async def start(self, run_ids: Sequence[RunId], *, at: datetime, worker: str) -> Sequence[Run]:
        """Lock the endpoints of the exclusive candidates, then the runs (both in id order, so
        concurrent starters queue instead of deadlocking; one statement, :func:`_start_statement`),
        then decide as the in-memory adapter does, against state no other starter can change
        until this one commits."""
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return []
        rows = await self._execute(_start_statement(self._dialect), {"ids": ids})
        current = {row.id: _to_run(row) for row in rows}
        self._remember(run_table, {run.id: run.tenant_id for run in current.values()})
        exclusive = {r.endpoint_id for r in current.values() if r.exclusive and r.status is RunStatus.PENDING}
        busy: set[Any] = set()
        if exclusive:  # which of their endpoints has a run going already
            busy_rows = await self._execute(
                select(run_table.c.endpoint_id).distinct().where(
                    self._in(run_table.c.endpoint_id, exclusive),
                    run_table.c.status == RunStatus.RUNNING.value,
                    run_table.c.exclusive.is_(True),
                )
            )
            busy = set(busy_rows.scalars())
        started: list[Run] = []
        for run_id in ids:
            run = current.get(run_id)
            if run is None or run.status is not RunStatus.PENDING:
                continue
            if run.exclusive and run.endpoint_id in busy:
                continue
            started.append(run.start(at=at, worker=worker))
            if run.exclusive:
                busy.add(run.endpoint_id)
        if started:
            # what ``Run.start`` changes, for all of them in one statement
            await self._execute(
                update(run_table)
                .where(self._in(run_table.c.id, [run.id for run in started]))
                .values(
                    status=RunStatus.RUNNING.value, started_at=self._later(at, run_table.c.scheduled_at),
                    heartbeat_at=at, worker_id=worker,
                )
            )
        return started

    async def beat(self, run_ids: Sequence[RunId], *, at: datetime) -> Sequence[RunId]:
        if not run_ids:
            return []
        statement = (
            update(run_table)
            .where(self._in(run_table.c.id, run_ids), run_table.c.status == RunStatus.RUNNING.value)
            .values(heartbeat_at=at)
            .returning(run_table.c.id)
        )
        alive = set((await self._execute(statement)).scalars())
        return [run_id for run_id in run_ids if run_id not in alive]

    async def mark_dispatched(self, run_ids: Sequence[RunId], *, at: datetime) -> None:
        if not run_ids:
            return
        # rows another writer holds are skipped, not waited for: it is starting, canceling or
        # marking the run itself, and waiting (an UPDATE locks in no set order) could deadlock
        # with a worker that locks the runs it starts in id order
        pending = run_table.c.status == RunStatus.PENDING.value
        if self._dialect != "postgresql":  # SQLite: the transaction holds the database's write lock
            await self._execute(
                update(run_table).where(self._in(run_table.c.id, run_ids), pending).values(dispatched_at=at)
            )
            return
        # The status is checked after locking, outside a materialized CTE: a status condition next
        # to ``id = ANY`` lets PostgreSQL read the partial index of pending runs (all of it, dead
        # entries included until it vacuums) instead of the primary key.
        locked = (
            select(run_table.c.id, run_table.c.status)
            .where(self._in(run_table.c.id, run_ids))
            .order_by(run_table.c.id)
            .with_for_update(skip_locked=True, key_share=True)
            .cte("locked")
            .prefix_with("MATERIALIZED")
        )
        await self._execute(
            update(run_table)
            .where(run_table.c.id == locked.c.id, locked.c.status == RunStatus.PENDING.value)
            .values(dispatched_at=at)
        )

    async def to_dispatch(self, *, now: datetime, dispatched_before: datetime | None, limit: int) -> Sequence[Run]:
        parameters = {"now": now, "limit": max(limit, 0)}
        if dispatched_before is not None:
            parameters["before"] = dispatched_before
        statement = _to_dispatch_statement(sweep=dispatched_before is not None)
        return [_to_run(row) for row in await self._execute(statement, parameters)]

    async def stale_running(self, *, heartbeat_before: datetime, limit: int) -> Sequence[Run]:
        c = run_table.c
        statement = (
            select(*RUN_COLUMNS)
            .where(
                c.status == RunStatus.RUNNING.value,
                func.coalesce(c.heartbeat_at, c.started_at, c.created_at) < heartbeat_before,
            )
            .order_by(func.coalesce(c.heartbeat_at, c.created_at), c.id)
            .limit(max(limit, 0))
        )
        return [_to_run(row) for row in await self._execute(statement)]

    async def oldest_pending(self, endpoint_ids: Sequence[EndpointId], *, now: datetime) -> Sequence[Run]:
        if not endpoint_ids:
            return []
        statement = _oldest_pending_statement(self._dialect)
        parameters = {"endpoint_ids": list(dict.fromkeys(endpoint_ids)), "now": now}
        return [_to_run(row) for row in await self._execute(statement, parameters)]


@functools.cache
def _to_dispatch_statement(*, sweep: bool) -> Select[Any]:
    """Due pending runs never dispatched (the small ``ix_runs_undispatched``), or, for a ``sweep``,
    also those dispatched before ``:before`` (which reads ``ix_runs_pending``); built once."""
    c = run_table.c
    never = c.dispatched_at.is_(None)
    return (
        select(*RUN_COLUMNS)
        .where(
            c.status == RunStatus.PENDING.value,
            c.scheduled_at <= bindparam("now", type_=c.scheduled_at.type),
            never | (c.dispatched_at < bindparam("before", type_=c.dispatched_at.type)) if sweep else never,
        )
        .order_by(c.scheduled_at, c.id)
        .limit(bindparam("limit", type_=Integer))
    )


@functools.cache
def _next_pending_statement() -> Select[Any]:
    return select(func.min(run_table.c.scheduled_at)).where(
        run_table.c.status == RunStatus.PENDING.value, run_table.c.dispatched_at.is_(None)
    )


@functools.cache
def _start_statement(dialect: str) -> Select[Any]:
    """The runs in ``:ids``, locked in id order, after the endpoints of the exclusive ones,
    locked in id order: one statement, built once per dialect. The endpoints are locked by an
    uncorrelated subquery in the condition, which PostgreSQL evaluates once, before it reads (and
    locks) any run: the lock order of every writer, endpoints before runs. A run changed while the
    statement waited for a lock is read as committed (PostgreSQL rechecks a row it locks)."""
    candidate = run_table.alias("candidate")
    # no status condition here: with one, PostgreSQL may read the partial index of pending runs
    # (all of it, dead entries included until it vacuums) instead of the primary key; a run in
    # ``:ids`` that is no longer pending costs its endpoint's lock, nothing else
    exclusive = select(candidate.c.endpoint_id).where(
        in_parameter(dialect, candidate.c.id, "ids"), candidate.c.exclusive.is_(True)
    )
    locked = (
        select(endpoint_table.c.id)
        .where(endpoint_table.c.id.in_(exclusive))
        .order_by(endpoint_table.c.id)
        .with_for_update(key_share=True)
        .subquery("locked")
    )
    endpoints_locked = select(func.count()).select_from(locked).scalar_subquery() >= 0
    return (
        select(*RUN_COLUMNS)
        .where(in_parameter(dialect, _c.id, "ids"), endpoints_locked)
        .order_by(_c.id)
        .with_for_update(key_share=True)
    )


@functools.cache
def _oldest_pending_statement(dialect: str) -> Select[Any]:
    """The oldest pending, due run of each endpoint in ``:endpoint_ids`` (as of ``:now``), built once
    per dialect: a worker asks at every batch of exclusive runs it records.

    On PostgreSQL, one ``LIMIT 1`` per endpoint (``LATERAL``), which reads the endpoint's entries
    in ``ix_runs_pending_endpoint`` in order and stops at the first; the window query below let
    the planner scan every pending run instead. SQLite has no ``LATERAL``.
    """
    now = bindparam("now", type_=_c.scheduled_at.type)
    if dialect == "postgresql":
        wanted = func.unnest(bindparam("endpoint_ids", type_=postgresql.ARRAY(_c.endpoint_id.type))).table_valued(
            "endpoint_id"
        ).render_derived(name="wanted")
        oldest = (
            select(*RUN_COLUMNS)
            .where(_c.endpoint_id == wanted.c.endpoint_id, _c.status == RunStatus.PENDING.value, _c.scheduled_at <= now)
            .order_by(_c.scheduled_at, _c.id)
            .limit(1)
            .lateral("oldest")
        )
        return (
            select(*(oldest.c[column.key] for column in RUN_COLUMNS))
            .select_from(wanted.join(oldest, true()))
            .order_by(oldest.c.scheduled_at, oldest.c.id)
        )
    rank = func.row_number().over(partition_by=_c.endpoint_id, order_by=(_c.scheduled_at, _c.id)).label("rank")
    ranked = (
        select(*RUN_COLUMNS, rank)
        .where(
            in_parameter(dialect, _c.endpoint_id, "endpoint_ids"),
            _c.status == RunStatus.PENDING.value,
            _c.scheduled_at <= now,
        )
        .subquery()
    )
    return (
        select(*(ranked.c[column.key] for column in RUN_COLUMNS))
        .where(ranked.c.rank == 1)
        .order_by(ranked.c.scheduled_at, ranked.c.id)
    )
