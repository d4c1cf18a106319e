"""``/v1/workflow-runs``: one workflow run with its steps and their outputs; cancel it."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency

from api.http.auth import needs
from api.http.openapi import errors
from api.http.params import WorkflowRunIdPath
from api.http.schemas.workflows import WorkflowRunDetail, WorkflowRunOut, WorkflowRunStepList, WorkflowRunStepOut
from domain.tokens import Permission
from domain.workflows import WorkflowRunId
from services.audit import AuditService
from services.tokens import Principal
from services.workflows import WorkflowsService


class WorkflowRunsController(Controller):
    path = "/workflow-runs"
    tags = ["workflows"]

    @get(
        "/{workflow_run_id:str}", opt=needs(Permission.READ), responses=errors(404), operation_id="getWorkflowRun",
        summary="Get a workflow run",
    )
    async def get_workflow_run(
        self,
        workflow_run_id: WorkflowRunIdPath,
        workflows: NamedDependency[WorkflowsService],
        principal: NamedDependency[Principal],
    ) -> WorkflowRunDetail:
        """One workflow run of the tenant: its status, input and plan, and each step's state,
        resolved input and output."""
        run = await workflows.get_run(principal.tenant_id, WorkflowRunId(workflow_run_id))
        steps = await workflows.steps(principal.tenant_id, run.id)
        return WorkflowRunDetail.with_steps(run, list(steps))

    @get(
        "/{workflow_run_id:str}/steps", opt=needs(Permission.READ), responses=errors(404),
        operation_id="listWorkflowRunSteps", summary="List a workflow run's steps",
    )
    async def list_workflow_run_steps(
        self,
        workflow_run_id: WorkflowRunIdPath,
        workflows: NamedDependency[WorkflowsService],
        principal: NamedDependency[Principal],
    ) -> WorkflowRunStepList:
        """Each step's state in the run, in the workflow's declared order."""
        steps = await workflows.steps(principal.tenant_id, WorkflowRunId(workflow_run_id))
        return WorkflowRunStepList(items=[WorkflowRunStepOut.of(step) for step in steps])

    @post(
        "/{workflow_run_id:str}/cancel", status_code=200, opt=needs(Permission.OPERATE), responses=errors(404, 409),
        operation_id="cancelWorkflowRun", summary="Cancel a workflow run",
    )
    async def cancel_workflow_run(
        self,
        workflow_run_id: WorkflowRunIdPath,
        workflows: NamedDependency[WorkflowsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> WorkflowRunOut:
        """Cancel a pending or running workflow run: its unfinished steps are canceled, and so are
        the runs executing them. A finished run answers 409 invalid_transition."""
        async with audit.action(principal.actor, "workflow_run.cancel", "workflow_run", workflow_run_id):
            run = await workflows.cancel_run(principal.tenant_id, WorkflowRunId(workflow_run_id))
        return WorkflowRunOut.of(run)
