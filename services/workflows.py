"""Workflow use cases: define and revise workflows, plan, start, read and cancel their runs.

A run starts in two moves: the plan is made outside any transaction (an AI
planner may take seconds; :func:`~domain.planning.plan_with_fallback` falls
back to the deterministic plan and says why), then one transaction stores the
run with its plan, every step, the job runs of the steps ready at once, and
the events that tell of it (:class:`~services.orchestrator.Orchestrator`). The
job runs are dispatched after the commit. From there the engine's workers
advance the run as its steps end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from domain.errors import FieldError, InvalidTransition, ValidationFailed
from domain.events import Event
from domain.execution import DispatchItem, Dispatcher
from domain.ids import TenantId
from domain.pagination import Page, PageRequest
from domain.planning import DeterministicPlanner, Plan, Planner, plan_with_fallback
from domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from domain.queries import WorkflowQuery
from domain.workflow_specs import build_workflow, workflow_fields
from domain.workflows import (
    EndpointRef,
    PlannerKind,
    TriggerKind,
    Workflow,
    WorkflowRun,
    WorkflowRunId,
    WorkflowRunStep,
    WorkflowStatus,
)
from services.orchestrator import Launched, Orchestrator

PLAN_TIMEOUT_S = 120.0
"""Longest a planner may take for one run before the deterministic plan is used, in seconds."""


@frozen(kw_only=True)
class Prepared:
    """A run about to start: the version it runs, the pending run, and its plan."""

    workflow: Workflow
    run: WorkflowRun
    plan: Plan


class WorkflowsService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        dispatcher: Dispatcher | None = None,
        planner: Planner | None = None,
        orchestrator: Orchestrator | None = None,
        plan_timeout_s: float = PLAN_TIMEOUT_S,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._dispatcher = dispatcher
        self._planner: Planner = planner or DeterministicPlanner()
        self._orchestrator = orchestrator or Orchestrator(uow=uow, clock=clock)
        self._plan_timeout_s = plan_timeout_s

    # -- definitions ----------------------------------------------------------------

    async def create(self, tenant_id: TenantId, spec: Mapping[str, Any]) -> Workflow:
        """Define version 1 of a workflow; raises ``ValidationFailed`` listing every problem (a step's
        endpoint must be one of the tenant's), or ``AlreadyExists`` when the slug is taken."""
        fields = workflow_fields(spec)
        workflow = build_workflow(
            lambda **f: Workflow.new(tenant_id=tenant_id, now=self._clock.now(), **f), fields
        )
        async with self._uow() as uow:
            await _check_endpoints(uow, workflow)
            await uow.workflows.add(workflow)
            await uow.commit()
        return workflow

    async def update(self, tenant_id: TenantId, slug: str, spec: Mapping[str, Any]) -> Workflow:
        """Store the next version with the definition fields ``spec`` gives (``slug``, if given,
        must be the workflow's); runs already started keep their version. An archived workflow
        raises ``InvalidTransition``."""
        fields = workflow_fields(spec, partial=True)
        if "slug" in fields and fields.pop("slug") != slug:
            raise ValidationFailed.field("slug", f"cannot change: the workflow is {slug!r}")
        async with self._uow() as uow:
            current = await uow.workflows.get(slug, tenant_id=tenant_id)
            revised = build_workflow(lambda **f: current.revised(now=self._clock.now(), **f), fields)
            await _check_endpoints(uow, revised)
            await uow.workflows.add(revised)
            await uow.commit()
        return revised

    async def get(self, tenant_id: TenantId, slug: str, version: int | None = None) -> Workflow:
        """The workflow at its newest version, or at ``version``; raises ``NotFound``."""
        async with self._uow() as uow:
            return await uow.workflows.get(slug, tenant_id=tenant_id, version=version)

    async def list(self, tenant_id: TenantId, query: WorkflowQuery | None = None) -> Page[Workflow]:
        """A page of the tenant's workflows at their newest versions, newest first."""
        async with self._uow() as uow:
            return await uow.workflows.list(tenant_id, query or WorkflowQuery())

    async def archive(self, tenant_id: TenantId, slug: str) -> Workflow:
        """Archive a workflow: no trigger starts it again and it cannot change; runs in flight go
        on. Archiving twice changes nothing."""
        async with self._uow() as uow:
            current = await uow.workflows.get(slug, tenant_id=tenant_id)
            archived = current.archive(now=self._clock.now())
            if archived is not current:
                await uow.workflows.update(archived)
                await uow.commit()
        return archived

    # -- planning and starting --------------------------------------------------------

    def planner_for(self, workflow: Workflow) -> Planner:
        """The configured planner for ``planner: ai`` workflows, the deterministic one otherwise."""
        return self._planner if workflow.planner is PlannerKind.AI else DeterministicPlanner()

    async def plan(self, workflow: Workflow) -> Plan:
        return await plan_with_fallback(
            self.planner_for(workflow), workflow.description, workflow.briefs(), timeout_s=self._plan_timeout_s
        )

    async def preview_plan(self, tenant_id: TenantId, slug: str) -> Plan:
        """The plan a run of the newest version would follow now; nothing is stored."""
        return await self.plan(await self.get(tenant_id, slug))

    async def start(
        self, tenant_id: TenantId, slug: str, input: Mapping[str, Any] | None = None, *, trigger: str = "manual"
    ) -> WorkflowRun:
        """Start a run of the newest version with ``input`` as its payload (``$.trigger``);
        ``trigger`` says what started it (``manual``, ``cron``, ``event``). An archived
        workflow raises ``InvalidTransition``."""
        kind = _trigger(trigger)
        workflow = await self.get(tenant_id, slug)
        prepared = await self.prepare(workflow, input, trigger=kind)
        events: list[Event] = []
        async with self._uow() as uow:
            current = await uow.workflows.get(slug, tenant_id=tenant_id)
            if current.status is WorkflowStatus.ARCHIVED:
                raise InvalidTransition(f"workflow {slug} is archived and cannot run")
            launched = await self.launch(uow, prepared, events=events)
            await uow.events.append(events)
            await uow.commit()
        await self.dispatch([launched])
        return launched.run

    async def prepare(
        self, workflow: Workflow, input: Mapping[str, Any] | None, *, trigger: TriggerKind
    ) -> Prepared:
        """A pending run of ``workflow`` and its plan (outside any transaction)."""
        run = WorkflowRun.new(workflow=workflow, now=self._clock.now(), input=input, trigger=trigger)
        return Prepared(workflow=workflow, run=run, plan=await self.plan(workflow))

    async def launch(self, uow: UnitOfWork, prepared: Prepared, *, events: list[Event]) -> Launched:
        """Store a prepared run in ``uow``'s transaction; its events are added to ``events`` (the
        caller appends them last, then commits, then calls :meth:`dispatch`)."""
        return await self._orchestrator.launch(
            uow, prepared.workflow, prepared.run, prepared.plan, now=self._clock.now(), events=events
        )

    async def dispatch(self, launched: Sequence[Launched]) -> None:
        """Hand the job runs of committed launches to the workers."""
        items: list[DispatchItem] = [item for one in launched for item in one.dispatch]
        if items and self._dispatcher is not None:
            await self._dispatcher.dispatch(items)

    # -- runs -------------------------------------------------------------------------

    async def runs(self, tenant_id: TenantId, slug: str, page: PageRequest | None = None) -> Page[WorkflowRun]:
        """A page of the workflow's runs (every version), newest first; raises ``NotFound``."""
        async with self._uow() as uow:
            workflow = await uow.workflows.get(slug, tenant_id=tenant_id)
            return await uow.workflow_runs.list(tenant_id, workflow.id, page or PageRequest())

    async def get_run(self, tenant_id: TenantId, run_id: WorkflowRunId) -> WorkflowRun:
        async with self._uow() as uow:
            return await uow.workflow_runs.get(run_id, tenant_id=tenant_id)

    async def steps(self, tenant_id: TenantId, run_id: WorkflowRunId) -> list[WorkflowRunStep]:
        """The run's steps in the workflow's declared order; raises ``NotFound`` for another tenant's run."""
        async with self._uow() as uow:
            run = await uow.workflow_runs.get(run_id, tenant_id=tenant_id)
            workflow = await self._orchestrator.version(uow, run)
            stored = {state.step_key: state for state in await uow.workflow_steps.list_for_run(run.id)}
        return [stored[key] for key in workflow.keys if key in stored]

    async def cancel_run(self, tenant_id: TenantId, run_id: WorkflowRunId) -> WorkflowRun:
        """Cancel a pending or running run: its unfinished steps are canceled with it, and their job
        runs right after (a running one stops at its worker's next heartbeat). A finished run
        raises ``InvalidTransition``."""
        async with self._uow() as uow:
            run = await uow.workflow_runs.get(run_id, tenant_id=tenant_id, for_update=True)
            canceled, jobs = await self._orchestrator.cancel(
                uow, run, now=self._clock.now(), reason="canceled by an operator"
            )
            await uow.commit()
        await self._orchestrator.cancel_runs(jobs, reason="its workflow run was canceled")
        return canceled


def _trigger(value: str | TriggerKind) -> TriggerKind:
    try:
        return TriggerKind(value)
    except ValueError:
        raise ValidationFailed.field("trigger", "must be 'manual', 'cron' or 'event'") from None


async def _check_endpoints(uow: UnitOfWork, workflow: Workflow) -> None:
    """Each endpoint step names one of the workflow's tenant's endpoints (not archived)."""
    wanted = {
        index: step.target.endpoint_id
        for index, step in enumerate(workflow.steps)
        if isinstance(step.target, EndpointRef)
    }
    if not wanted:
        return
    found = await uow.endpoints.get_many(sorted(set(wanted.values())))
    errors: list[FieldError] = []
    for index, endpoint_id in wanted.items():
        endpoint = found.get(endpoint_id)
        if endpoint is None or endpoint.tenant_id != workflow.tenant_id:
            errors.append(FieldError(f"steps[{index}].target.endpoint_id", f"unknown endpoint {endpoint_id!r}"))
        elif str(endpoint.status) == "archived":
            errors.append(FieldError(f"steps[{index}].target.endpoint_id", f"endpoint {endpoint.name!r} is archived"))
    if errors:
        raise ValidationFailed(errors)
