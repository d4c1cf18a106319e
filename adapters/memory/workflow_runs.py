"""Workflow runs and their steps, in memory."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from adapters.memory.store import MemoryStore, paginate
from domain.errors import AlreadyExists, NotFound
from domain.ids import TenantId
from domain.pagination import Page, PageRequest
from domain.workflows import WorkflowId, WorkflowRun, WorkflowRunId, WorkflowRunStep


class MemoryWorkflowRunRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def add(self, run: WorkflowRun) -> None:
        if run.id in self._store.workflow_runs:
            raise AlreadyExists("workflow run", run.id)
        if not any(key[0] == run.workflow_id for key in self._store.workflow_versions):
            raise NotFound("workflow", run.workflow_id)
        self._store.workflow_runs[run.id] = run

    async def get(
        self, run_id: WorkflowRunId, *, tenant_id: TenantId | None, for_update: bool = False
    ) -> WorkflowRun:
        run = self._store.workflow_runs.get(run_id)
        if run is None or (tenant_id is not None and run.tenant_id != tenant_id):
            raise NotFound("workflow run", run_id)
        return run

    async def get_many(
        self, run_ids: Sequence[WorkflowRunId], *, for_update: bool = False
    ) -> dict[WorkflowRunId, WorkflowRun]:
        return {rid: self._store.workflow_runs[rid] for rid in run_ids if rid in self._store.workflow_runs}

    async def update(self, run: WorkflowRun) -> None:
        await self.get(run.id, tenant_id=run.tenant_id)
        self._store.workflow_runs[run.id] = run

    async def list(self, tenant_id: TenantId, workflow_id: WorkflowId, page: PageRequest) -> Page[WorkflowRun]:
        runs = (
            run for run in self._store.workflow_runs.values()
            if run.tenant_id == tenant_id and run.workflow_id == workflow_id
        )
        return paginate(runs, page, lambda r: (r.created_at, r.id))


class MemoryWorkflowStepRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def add_many(self, steps: Sequence[WorkflowRunStep]) -> None:
        for step in steps:
            if step.workflow_run_id not in self._store.workflow_runs:
                raise NotFound("workflow run", step.workflow_run_id)
            key = (step.workflow_run_id, step.step_key)
            if key in self._store.workflow_steps:
                raise AlreadyExists("workflow step", f"{step.workflow_run_id}/{step.step_key}")
        keys = [(step.workflow_run_id, step.step_key) for step in steps]
        if len(set(keys)) != len(keys):
            raise AlreadyExists("workflow step", "a step given twice")
        for step in steps:
            self._store.workflow_steps[(step.workflow_run_id, step.step_key)] = step

    async def list_for_run(
        self, run_id: WorkflowRunId, *, keys: Collection[str] | None = None, for_update: bool = False
    ) -> Sequence[WorkflowRunStep]:
        if keys is not None:
            steps = self._store.workflow_steps
            found = [steps[(run_id, key)] for key in set(keys) if (run_id, key) in steps]
            return sorted(found, key=lambda step: step.step_key)
        found = [step for (rid, _), step in self._store.workflow_steps.items() if rid == run_id]
        return sorted(found, key=lambda step: step.step_key)

    async def update_many(self, steps: Sequence[WorkflowRunStep]) -> None:
        for step in steps:
            stored = self._store.workflow_steps.get((step.workflow_run_id, step.step_key))
            if stored is None or stored.tenant_id != step.tenant_id:
                raise NotFound("workflow step", f"{step.workflow_run_id}/{step.step_key}")
        for step in steps:
            self._store.workflow_steps[(step.workflow_run_id, step.step_key)] = step
