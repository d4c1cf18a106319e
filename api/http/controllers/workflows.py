"""``/v1/workflows``: define, list, read, revise and archive workflows; preview a plan; run one and
list its runs."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from api.http.auth import needs
from api.http.openapi import errors
from api.http.params import WorkflowSlugPath
from api.http.schemas.common import given, literal_of
from api.http.schemas.workflows import (
    PlanOut,
    WorkflowCreate,
    WorkflowList,
    WorkflowOut,
    WorkflowRunList,
    WorkflowRunOut,
    WorkflowRunRequest,
    WorkflowUpdate,
)
from domain.errors import ValidationFailed
from domain.pagination import PageRequest
from domain.queries import WorkflowQuery
from domain.tokens import Permission
from domain.workflows import WorkflowStatus
from services.audit import AuditService
from services.tokens import Principal
from services.workflows import WorkflowsService

_ONE = errors(404, 409)


def _definition_summary(spec: dict[str, Any]) -> dict[str, Any]:
    """What an audit entry keeps of a definition: its shape, never inputs or target details."""
    return {
        "name": spec.get("name"),
        "steps": [step["key"] for step in spec.get("steps", [])],
        "triggers": [trigger["kind"] for trigger in spec.get("triggers", [])],
    }


class WorkflowsController(Controller):
    path = "/workflows"
    tags = ["workflows"]

    # -- definition ---------------------------------------------------------------

    @post("/", opt=needs(Permission.ADMIN), responses=errors(409), operation_id="createWorkflow", summary="Define a workflow")
    async def create_workflow(
        self,
        data: JSONBody[WorkflowCreate],
        workflows: NamedDependency[WorkflowsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> WorkflowOut:
        """Define version 1 of a workflow; its slug must be new in the tenant. The definition is
        checked whole: every problem answers 422 with its path (`steps[2].depends_on[0]`, a cycle,
        a condition or reference), and nothing is stored."""
        spec = given(data)
        summary = {"slug": data.slug, **_definition_summary(spec)}
        async with audit.action(principal.actor, "workflow.create", "workflow", summary=summary):
            workflow = await workflows.create(principal.tenant_id, spec)
        return WorkflowOut.of(workflow)

    @get("/", opt=needs(Permission.READ), responses=errors(), operation_id="listWorkflows", summary="List workflows")
    async def list_workflows(
        self,
        workflows: NamedDependency[WorkflowsService],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        status: Annotated[
            literal_of(WorkflowStatus) | None,
            QueryParameter(description="Only workflows in this status; archived ones only when asked for."),
        ] = None,
    ) -> WorkflowList:
        """The tenant's workflows (each at its newest version), newest first."""
        query = WorkflowQuery(status=WorkflowStatus(status) if status else None, page=page)
        result = await workflows.list(principal.tenant_id, query)
        return WorkflowList(items=[WorkflowOut.of(w) for w in result.items], next_cursor=result.next_cursor)

    @get(
        "/{slug:str}", opt=needs(Permission.READ), responses=errors(404), operation_id="getWorkflow",
        summary="Get a workflow",
    )
    async def get_workflow(
        self,
        slug: WorkflowSlugPath,
        workflows: NamedDependency[WorkflowsService],
        principal: NamedDependency[Principal],
        version: Annotated[
            int | None, QueryParameter(ge=1, le=2**31 - 1, description="This version instead of the newest.")
        ] = None,
    ) -> WorkflowOut:
        """One workflow of the tenant at its newest version, or at `version`."""
        return WorkflowOut.of(await workflows.get(principal.tenant_id, slug, version))

    @put(
        "/{slug:str}", opt=needs(Permission.ADMIN), responses=_ONE, operation_id="updateWorkflow",
        summary="Define a workflow's next version",
    )
    async def update_workflow(
        self,
        slug: WorkflowSlugPath,
        data: JSONBody[WorkflowUpdate],
        workflows: NamedDependency[WorkflowsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> WorkflowOut:
        """Replace the definition: the answer is the next version. Fields left out take their
        defaults; runs already started keep the version they started with. An archived workflow
        answers 409 invalid_transition."""
        current = await workflows.get(principal.tenant_id, slug)
        spec = given(data)
        if spec.pop("slug", slug) != slug:
            raise ValidationFailed.field("slug", f"cannot change: the workflow is {slug!r}")
        spec = {"description": "", "planner": "deterministic", "triggers": [], **spec}
        summary = {"slug": slug, "version": current.version + 1, **_definition_summary(spec)}
        async with audit.action(principal.actor, "workflow.update", "workflow", current.id, summary=summary):
            workflow = await workflows.update(principal.tenant_id, slug, spec)
        return WorkflowOut.of(workflow)

    @post(
        "/{slug:str}/archive", status_code=200, opt=needs(Permission.ADMIN), responses=_ONE,
        operation_id="archiveWorkflow", summary="Archive a workflow",
    )
    async def archive_workflow(
        self,
        slug: WorkflowSlugPath,
        workflows: NamedDependency[WorkflowsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> WorkflowOut:
        """Archive a workflow: it never runs again (no trigger starts it) and cannot change; its
        versions and runs stay readable. Archiving twice changes nothing."""
        current = await workflows.get(principal.tenant_id, slug)
        async with audit.action(principal.actor, "workflow.archive", "workflow", current.id, summary={"slug": slug}):
            workflow = await workflows.archive(principal.tenant_id, slug)
        return WorkflowOut.of(workflow)

    # -- planning and runs --------------------------------------------------------

    @post(
        "/{slug:str}/plan", status_code=200, opt=needs(Permission.READ), responses=errors(404),
        operation_id="previewWorkflowPlan", summary="Preview a workflow's plan",
    )
    async def preview_plan(
        self,
        slug: WorkflowSlugPath,
        workflows: NamedDependency[WorkflowsService],
        principal: NamedDependency[Principal],
    ) -> PlanOut:
        """The plan a run of the newest version would follow now: stages, the planner's
        rationale, which planner made it and, when the deterministic plan replaced the AI
        planner's answer, why. Nothing is stored."""
        return PlanOut.of(await workflows.preview_plan(principal.tenant_id, slug))

    @post(
        "/{slug:str}/run", opt=needs(Permission.OPERATE), responses=_ONE, operation_id="runWorkflow",
        summary="Run a workflow",
    )
    async def run_workflow(
        self,
        slug: WorkflowSlugPath,
        workflows: NamedDependency[WorkflowsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
        data: JSONBody[WorkflowRunRequest | None] = None,
    ) -> WorkflowRunOut:
        """Start a run of the newest version (trigger `manual`); `input` (the body is optional) is
        its payload, `$.trigger` in conditions and references. An archived workflow answers 409."""
        run_input = data.input if data is not None else {}
        summary = {"workflow": slug, "input": sorted(run_input)}  # the names only: values may be secret
        async with audit.action(principal.actor, "workflow.run", "workflow_run", summary=summary):
            run = await workflows.start(principal.tenant_id, slug, run_input)
        return WorkflowRunOut.of(run)

    @get(
        "/{slug:str}/runs", opt=needs(Permission.READ), responses=errors(404), operation_id="listWorkflowRuns",
        summary="List a workflow's runs",
    )
    async def list_workflow_runs(
        self,
        slug: WorkflowSlugPath,
        workflows: NamedDependency[WorkflowsService],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
    ) -> WorkflowRunList:
        """The workflow's runs, of every version, newest first."""
        result = await workflows.runs(principal.tenant_id, slug, page)
        return WorkflowRunList(items=[WorkflowRunOut.of(run) for run in result.items], next_cursor=result.next_cursor)
