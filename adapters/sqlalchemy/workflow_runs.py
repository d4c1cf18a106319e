"""Workflow runs in ``workflow_runs``, and their steps in ``workflow_run_steps``."""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import Row, Text, and_, bindparam, cast, insert, select, update

from adapters.sqlalchemy.repository import Repository
from adapters.sqlalchemy.tables import workflow_run_steps as step_table
from adapters.sqlalchemy.tables import workflow_runs as run_table
from domain.errors import AlreadyExists, NotFound
from domain.ids import RunId, TenantId
from domain.pagination import Page, PageRequest
from domain.planning import Plan
from domain.workflows import (
    SkipCause,
    StepStatus,
    TriggerKind,
    WorkflowId,
    WorkflowRun,
    WorkflowRunId,
    WorkflowRunStatus,
    WorkflowRunStep,
)


def _run_values(run: WorkflowRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "tenant_id": run.tenant_id,
        "workflow_id": run.workflow_id,
        "workflow_version": run.workflow_version,
        "status": run.status.value,
        "trigger": run.trigger.value,
        "input": dict(run.input),
        "plan": run.plan.as_dict() if run.plan is not None else None,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
    }


PLANS_KEPT = 1024
"""Parsed plans kept in memory, by their stored text (a run's plan does not change once set)."""

RUN_COLUMNS = (*(column for column in run_table.c if column.name != "plan"), cast(run_table.c.plan, Text).label("plan"))
"""The columns :func:`_to_run` reads: the plan as its stored text, parsed through :func:`_plan`."""


@functools.lru_cache(maxsize=PLANS_KEPT)
def _plan(stored: str) -> Plan | None:
    """The plan stored as JSON text ``stored``, parsed once per process: the orchestrator reads its
    workflow run at every step's end, and parsing a 200-stage plan (every stage checked) cost more
    than the rest of the row. ``Plan`` is immutable, so runs may share one."""
    data = json.loads(stored)
    return Plan.from_dict(data) if data is not None else None


def _to_run(row: Row[Any]) -> WorkflowRun:
    return WorkflowRun(
        id=WorkflowRunId(row.id),
        tenant_id=TenantId(row.tenant_id),
        workflow_id=WorkflowId(row.workflow_id),
        workflow_version=row.workflow_version,
        status=WorkflowRunStatus(row.status),
        trigger=TriggerKind(row.trigger),
        input=dict(row.input),
        plan=_plan(row.plan) if row.plan is not None else None,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
    )


def _step_values(step: WorkflowRunStep) -> dict[str, Any]:
    return {
        "workflow_run_id": step.workflow_run_id,
        "step_key": step.step_key,
        "tenant_id": step.tenant_id,
        "status": step.status.value,
        "remaining": step.remaining,
        "attempt": step.attempt,
        "job_run_id": step.job_run_id,
        "input": dict(step.input) if step.input is not None else None,
        "output": step.output,
        "error": step.error,
        "skip_cause": step.skip_cause.value if step.skip_cause is not None else None,
        "not_before": step.not_before,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
    }


def _to_step(row: Row[Any]) -> WorkflowRunStep:
    return WorkflowRunStep(
        tenant_id=TenantId(row.tenant_id),
        workflow_run_id=WorkflowRunId(row.workflow_run_id),
        step_key=row.step_key,
        status=StepStatus(row.status),
        remaining=row.remaining,
        attempt=row.attempt,
        job_run_id=RunId(row.job_run_id) if row.job_run_id is not None else None,
        input=dict(row.input) if row.input is not None else None,
        output=row.output,
        error=row.error,
        skip_cause=SkipCause(row.skip_cause) if row.skip_cause is not None else None,
        not_before=row.not_before,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


class SqlAlchemyWorkflowRunRepository(Repository):
    async def add(self, run: WorkflowRun) -> None:
        stored = await self._execute(
            self._insert_new(run_table, _run_values(run)),
            unique=lambda: AlreadyExists("workflow run", run.id),
            foreign_key=lambda: NotFound("workflow", run.workflow_id),
        )
        if stored.first() is None:
            raise AlreadyExists("workflow run", run.id)

    async def get(
        self, run_id: WorkflowRunId, *, tenant_id: TenantId | None, for_update: bool = False
    ) -> WorkflowRun:
        statement = select(*RUN_COLUMNS).where(run_table.c.id == run_id)
        if tenant_id is not None:
            statement = statement.where(run_table.c.tenant_id == tenant_id)
        if for_update:
            statement = statement.with_for_update(key_share=True)
        row = (await self._execute(statement)).first()
        if row is None:
            raise NotFound("workflow run", run_id)
        return _to_run(row)

    async def get_many(
        self, run_ids: Sequence[WorkflowRunId], *, for_update: bool = False
    ) -> dict[WorkflowRunId, WorkflowRun]:
        if not run_ids:
            return {}
        statement = select(*RUN_COLUMNS).where(self._in(run_table.c.id, run_ids)).order_by(run_table.c.id)
        if for_update:
            statement = statement.with_for_update(key_share=True)
        found = {row.id: _to_run(row) for row in await self._execute(statement)}
        return {run_id: found[run_id] for run_id in run_ids if run_id in found}

    async def update(self, run: WorkflowRun) -> None:
        values = _run_values(run)
        del values["id"]
        stored = await self._execute(
            update(run_table)
            .where(run_table.c.id == run.id, run_table.c.tenant_id == run.tenant_id)
            .values(values)
            .returning(run_table.c.id)
        )
        if stored.first() is None:
            raise NotFound("workflow run", run.id)

    async def list(self, tenant_id: TenantId, workflow_id: WorkflowId, page: PageRequest) -> Page[WorkflowRun]:
        statement = select(*RUN_COLUMNS).where(run_table.c.tenant_id == tenant_id, run_table.c.workflow_id == workflow_id)
        return await self._page(statement, at=run_table.c.created_at, id=run_table.c.id, page=page, to_entity=_to_run)


class SqlAlchemyWorkflowStepRepository(Repository):
    """Steps are never deleted and never change tenant (``repository.KEPT_TABLES``), so a step the
    current transaction has read or stored is known to exist with its tenant: :meth:`update_many`
    looks up only the others (the orchestrator writes back steps it has just read)."""

    def _remember_steps(self, steps: Iterable[WorkflowRunStep]) -> None:
        self._remember(step_table, {(step.workflow_run_id, step.step_key): step.tenant_id for step in steps})

    async def add_many(self, steps: Sequence[WorkflowRunStep]) -> None:
        await self._execute_many(
            insert(step_table),
            [_step_values(step) for step in steps],
            unique=lambda: AlreadyExists("workflow step", "a step of the run is stored already"),
            foreign_key=lambda: NotFound("workflow run", steps[0].workflow_run_id),
        )
        self._remember_steps(steps)

    async def list_for_run(
        self, run_id: WorkflowRunId, *, keys: Collection[str] | None = None, for_update: bool = False
    ) -> Sequence[WorkflowRunStep]:
        statement = select(step_table).where(step_table.c.workflow_run_id == run_id).order_by(step_table.c.step_key)
        if keys is not None:
            if not keys:
                return []
            statement = statement.where(self._in(step_table.c.step_key, sorted(set(keys))))
        if for_update:
            statement = statement.with_for_update(key_share=True)
        found = [_to_step(row) for row in await self._execute(statement)]
        self._remember_steps(found)
        return found

    async def update_many(self, steps: Sequence[WorkflowRunStep]) -> None:
        if not steps:
            return
        c = step_table.c
        known = self._uow.seen(step_table.name)
        keys = {
            (step.workflow_run_id, step.step_key) for step in steps
            if known.get((step.workflow_run_id, step.step_key)) != step.tenant_id
        }
        if keys:
            stored = await self._execute(
                select(c.workflow_run_id, c.step_key, c.tenant_id).where(
                    self._in(c.workflow_run_id, {run_id for run_id, _ in keys}),
                    self._in(c.step_key, {key for _, key in keys}),
                )
            )
            self._remember(step_table, {(row.workflow_run_id, row.step_key): row.tenant_id for row in stored})
            known = self._uow.seen(step_table.name)  # the lookup may have begun the transaction
        for step in steps:
            if known.get((step.workflow_run_id, step.step_key)) != step.tenant_id:
                raise NotFound("workflow step", f"{step.workflow_run_id}/{step.step_key}")
        statement = update(step_table).where(
            and_(c.workflow_run_id == bindparam("where_run"), c.step_key == bindparam("where_key"))
        )
        parameters = []
        for step in steps:
            values = _step_values(step)
            parameters.append(
                {"where_run": values.pop("workflow_run_id"), "where_key": values.pop("step_key"), **values}
            )
        await self._execute_many(statement, parameters)
