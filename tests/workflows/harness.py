"""The engine with the workflow services over one store, as a test sees it.

:class:`Flow` is the engine harness (``tests.engine.harness.Engine``: the
product's services, a fixed clock, a recording dispatcher) with workflows,
events and cron triggers on top, and an executor whose steps play scripts by
step key (:class:`~tests.workflows.fakes.StepExecutor`). Workers recording
outcomes advance the workflows, as in production: the recorder carries the
orchestrator.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from domain.clock import FixedClock
from domain.events import Event
from domain.ids import RunId
from domain.pagination import MAX_LIMIT, Cursor, PageRequest
from domain.planning import Planner
from domain.queries import EventQuery, RunQuery
from domain.runs import Run
from domain.workflows import Workflow, WorkflowRun, WorkflowRunStep
from services.events import EventsService
from services.orchestrator import Orchestrator
from services.outcomes import OutcomeRecorder
from services.runs import RunsService
from services.triggers import WorkflowTriggersService
from services.workflows import WorkflowsService
from tests.builders import TENANT
from tests.engine.fakes import RecordingDispatcher
from tests.engine.harness import Engine
from tests.workflows.fakes import StepExecutor

_slugs = itertools.count(1)


def step(key: str, *depends_on: str, **fields: Any) -> dict[str, Any]:
    """A step definition: a Python target (handler ``t.<key>``) after ``depends_on``."""
    spec: dict[str, Any] = {"key": key, "target": {"kind": "python", "handler": f"t.{key}"}, "depends_on": list(depends_on)}
    spec.update(fields)
    return spec


class Flow(Engine):
    def __init__(
        self, store: Any, clock: FixedClock, dispatcher: RecordingDispatcher, executor: StepExecutor,
        planner: Planner | None = None,
    ) -> None:
        super().__init__(store, clock, dispatcher, executor)  # type: ignore[arg-type]
        self.orchestrator = Orchestrator(uow=store.unit_of_work, clock=clock)
        self.recorder = OutcomeRecorder(rand=lambda: 1.0, listener=self.orchestrator)
        self.execution = self.execution_service()
        self.runs = RunsService(uow=store.unit_of_work, clock=clock, dispatcher=dispatcher, recorder=self.recorder)
        self.workflows = WorkflowsService(uow=store.unit_of_work, clock=clock, dispatcher=dispatcher, planner=planner)
        self.events = EventsService(uow=store.unit_of_work, clock=clock, workflows=self.workflows)
        self.triggers = self.triggers_for("scheduler-a")

    def triggers_for(self, owner: str) -> WorkflowTriggersService:
        return WorkflowTriggersService(
            uow=self.store.unit_of_work, clock=self.clock, workflows=self.workflows, owner=owner
        )

    # -- definitions -----------------------------------------------------------------

    async def define(self, *steps: Mapping[str, Any], **spec: Any) -> Workflow:
        """Define a workflow of ``steps`` (slug ``wf-<n>`` and no triggers unless ``spec`` says)."""
        n = next(_slugs)
        definition: dict[str, Any] = {"slug": f"wf-{n}", "name": f"Workflow {n}", "steps": list(steps)}
        definition.update(spec)
        return await self.workflows.create(TENANT, definition)

    async def start(self, workflow: Workflow, input: Mapping[str, Any] | None = None) -> WorkflowRun:
        return await self.workflows.start(TENANT, workflow.slug, input)

    # -- driving ---------------------------------------------------------------------

    async def work(self, *, separately: bool = False, rounds: int = 200) -> int:
        """Execute every dispatched run until nothing more is dispatched: each round's runs in one
        worker batch (or one call each, ``separately``). Returns how many runs executed."""
        done = 0
        for _ in range(rounds):
            ids = self.dispatcher.take()
            if not ids:
                return done
            if separately:
                for run_id in ids:
                    done += len(await self.execute(run_id))
            else:
                done += len(await self.execute(*ids))
        raise AssertionError("the workflow kept dispatching runs")

    # -- reading ---------------------------------------------------------------------

    async def reread(self, run: WorkflowRun) -> WorkflowRun:  # type: ignore[override]
        return await self.workflows.get_run(TENANT, run.id)

    async def steps_of(self, run: WorkflowRun) -> dict[str, WorkflowRunStep]:
        return {state.step_key: state for state in await self.workflows.steps(TENANT, run.id)}

    async def statuses(self, run: WorkflowRun) -> dict[str, str]:
        return {key: str(state.status) for key, state in (await self.steps_of(run)).items()}

    async def job_runs(self, run: WorkflowRun, key: str | None = None) -> list[Run]:
        """The job runs of ``run`` (of step ``key``), by attempt then creation."""
        found: list[Run] = []
        cursor: Cursor | None = None
        while True:
            page = await self.runs.list(TENANT, RunQuery(page=PageRequest(limit=MAX_LIMIT, cursor=cursor)))
            found.extend(r for r in page.items if r.workflow_run_id == run.id and (key is None or r.step_key == key))
            if page.next_cursor is None:
                break
            cursor = Cursor.decode(page.next_cursor)
        return sorted(found, key=lambda r: (r.step_key or "", r.attempt, r.created_at, r.id))

    async def job_run(self, run_id: RunId) -> Run:
        return await self.runs.get(TENANT, run_id)

    async def events_list(self, topic_prefix: str = "") -> list[Event]:
        found: list[Event] = []
        cursor: Cursor | None = None
        while True:
            page = await self.events.list(TENANT, EventQuery(page=PageRequest(limit=MAX_LIMIT, cursor=cursor)))
            found.extend(e for e in page.items if e.topic.startswith(topic_prefix))
            if page.next_cursor is None:
                return found
            cursor = Cursor.decode(page.next_cursor)

    async def topics(self, run: WorkflowRun | None = None) -> list[tuple[str, str | None]]:
        """``(topic, step)`` of the workflow events (of ``run``), in ``seq`` order."""
        return [
            (e.topic, e.payload.get("step"))
            for e in await self.events_list("workflow.")
            if run is None or e.payload.get("workflow_run_id") == run.id
        ]


def keys_of(calls: Sequence[Any]) -> list[str]:
    return [call.key for call in calls]
