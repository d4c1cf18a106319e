"""The orchestrator: workflow runs as stored rows, advanced inside the engine's own transactions.

It keeps no state of its own. Starting a run (:meth:`Orchestrator.launch`)
stores the run with its plan, every step with its count of unfinished
predecessors, and a job :class:`~domain.runs.Run` for each step ready at once,
in the caller's transaction. When a step's job run ends, the worker (or the
reconciler, or an operator's cancel) records the outcome through
:class:`~services.outcomes.OutcomeRecorder`, which calls
:meth:`Orchestrator.runs_settled` in the same transaction: the workflow run's
row is locked, the pure policy (:func:`~domain.workflows.advance`) applied,
the steps now ready get their job runs, and the recorder's caller dispatches
them right after its commit. Steps finishing at once on two workers queue on
the workflow run's row, so a join counts each predecessor once and is
dispatched once; a killed process leaves nothing half-done, because every
change commits together with the outcome that caused it.

Job runs: an endpoint step runs its endpoint (retries, timeout and priority
are the endpoint's) with the step's resolved inputs as params; an HTTP or
Python step's run carries a :class:`~domain.tasks.Task`, a snapshot of the
step (target, timeout, retry). Job runs are never exclusive, and their slot
``step:<workflow run id>:<step key>:<attempt>`` makes a step's attempt start
once. The engine retries them by their policy; the orchestrator then only
moves the step to the retry's job run (``may_retry=False`` for the policy).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import field, frozen

from domain.errors import Conflict
from domain.events import Event
from domain.execution import DispatchItem
from domain.ids import RunId
from domain.planning import Plan
from domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from domain.runs import Run, RunSource, RunStatus
from domain.tasks import DEFAULT_TIMEOUT, Task
from domain.errors import NotFound
from domain.workflows import (
    EndpointRef,
    MissingSteps,
    RunGraph,
    StepOutcome,
    StepStatus,
    Workflow,
    WorkflowRun,
    WorkflowRunId,
    WorkflowRunStatus,
    WorkflowRunStep,
    advance,
    cancel_run,
    pending_steps,
    start_run,
)

VERSION_CACHE = 256
"""Workflow versions kept parsed in memory (a version never changes)."""

_STEP_TOPICS = {
    StepStatus.RUNNING: "workflow.step.started",
    StepStatus.SUCCEEDED: "workflow.step.succeeded",
    StepStatus.FAILED: "workflow.step.failed",
    StepStatus.SKIPPED: "workflow.step.skipped",
    StepStatus.CANCELED: "workflow.step.canceled",
}
_RUN_TOPICS = {
    WorkflowRunStatus.RUNNING: "workflow.run.started",
    WorkflowRunStatus.SUCCEEDED: "workflow.run.succeeded",
    WorkflowRunStatus.FAILED: "workflow.run.failed",
    WorkflowRunStatus.CANCELED: "workflow.run.canceled",
}


@frozen(kw_only=True)
class StepReport:
    """What the orchestrator did with settled job runs: job runs to ``dispatch`` after the commit
    (steps now ready), job runs to ``cancel`` after the commit (steps of a run that halted),
    and the runs whose retries are ``abandoned`` (their step no longer waits for them)."""

    dispatch: tuple[DispatchItem, ...] = ()
    cancel: tuple[RunId, ...] = ()
    abandoned: frozenset[RunId] = frozenset()


NOTHING = StepReport()


@frozen(kw_only=True)
class Launched:
    """A run as stored by :meth:`Orchestrator.launch`, and the job runs to dispatch after the commit."""

    run: WorkflowRun
    dispatch: tuple[DispatchItem, ...] = ()
    events: tuple[Event, ...] = field(default=())


class Orchestrator:
    """Advances workflow runs; see the module's docstring. ``uow`` is used only after a commit,
    to cancel the job runs of steps a halt or a cancel ended (:meth:`cancel_runs`)."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock
        self._versions: OrderedDict[tuple[str, int], Workflow] = OrderedDict()

    # -- reading ------------------------------------------------------------------

    async def version(self, uow: UnitOfWork, run: WorkflowRun) -> Workflow:
        """The workflow version ``run`` executes (parsed once per process)."""
        key = (run.workflow_id, run.workflow_version)
        found = self._versions.get(key)
        if found is not None:
            self._versions.move_to_end(key)
            return found
        found = await uow.workflows.get_by_id(run.workflow_id, version=run.workflow_version)
        self._versions[key] = found
        if len(self._versions) > VERSION_CACHE:
            self._versions.popitem(last=False)
        return found

    # -- starting -----------------------------------------------------------------

    async def launch(
        self, uow: UnitOfWork, workflow: Workflow, run: WorkflowRun, plan: Plan, *, now: datetime,
        events: list[Event],
    ) -> Launched:
        """Store pending ``run`` of ``workflow`` started on ``plan``: the run, every step, the job
        runs of the steps ready at once (marked dispatched). Appends what happened to ``events``
        (the caller appends them last in its transaction)."""
        steps = pending_steps(workflow, run)
        started = start_run(workflow, run, steps, plan=plan, at=now)
        before = {state.step_key: state for state in steps}
        work = _Working(started.run, before, workflow.graph(started.run.plan))
        work.apply(started.run, started.steps)
        jobs, cancel = await self._dispatch_ready(uow, workflow, work, now=now)
        await uow.workflow_runs.add(work.run)
        await uow.workflow_steps.add_many([work.states[key] for key in workflow.keys])
        jobs, _ = await self._store_jobs(uow, jobs, cancel, now=now)
        events.extend(_run_events(workflow, None, run, work.run, now))
        events.extend(_step_events(workflow, work.run, before, work.in_order(work.states), now))
        if work.run.status.final:
            events.extend(_run_events(workflow, WorkflowRunStatus.RUNNING, run, work.run, now))
        self._versions.setdefault((workflow.id, workflow.version), workflow)
        return Launched(run=work.run, dispatch=tuple(_items(jobs)))

    # -- advancing ----------------------------------------------------------------

    async def runs_settled(
        self, uow: UnitOfWork, final: Sequence[Run], retries: Sequence[Run], *, now: datetime
    ) -> StepReport:
        """Advance the workflow runs of ``final`` job runs (stored in this transaction; ``retries``
        are the retries the engine creates for some of them). Locks each workflow run's row in
        id order; runs without a workflow cost nothing.

        Only the steps an advance reads are loaded: the finished steps and their successors
        first, then whatever :func:`advance` asks for (:class:`MissingSteps`: the predecessors
        of a step now free to start, every step on a halt or when a sink finishes). Steps are
        written back only if they changed."""
        mine = [run for run in final if run.workflow_run_id is not None and run.step_key is not None]
        if not mine:
            return NOTHING
        retry_of = {retry.retry_of: retry for retry in retries if retry.retry_of is not None}
        ids = sorted({WorkflowRunId(run.workflow_run_id) for run in mine if run.workflow_run_id})
        locked = await uow.workflow_runs.get_many(ids, for_update=True)
        dispatch: list[DispatchItem] = []
        cancel: list[RunId] = []
        abandoned: set[RunId] = set()
        events: list[Event] = []
        for workflow_run_id in ids:
            run = locked.get(workflow_run_id)
            jobs = sorted((job for job in mine if job.workflow_run_id == workflow_run_id), key=_finish_order)
            if run is None:
                continue  # a job run naming no stored workflow run is the engine's alone
            if run.status.final:
                abandoned.update(job.id for job in jobs if job.id in retry_of)
                continue
            workflow = await self.version(uow, run)
            graph = workflow.graph(run.plan)
            wanted = {job.step_key for job in jobs if job.step_key in graph.successors}
            wanted.update(successor for key in list(wanted) for successor in graph.successors[key])
            work = _Working(run, {}, graph)
            await work.load(uow, wanted, strict=False)
            for job in jobs:
                latest = work.states.get(job.step_key or "")
                if latest is None or work.run.status.final:
                    abandoned.add(job.id)
                    continue
                if latest.status is not StepStatus.RUNNING or latest.job_run_id != job.id:
                    abandoned.add(job.id)  # a stale outcome: the step was canceled, or moved on
                    continue
                retry = retry_of.get(job.id)
                if retry is not None:
                    work.states[latest.step_key] = latest.rerun(job_run_id=retry.id, attempt=retry.attempt)
                    continue
                cancel.extend(await self._advance(uow, workflow, work, _outcome(job, now)))
            jobs_now, more = await self._dispatch_ready(uow, workflow, work, now=now)
            changed = work.changed()
            if work.run != run:
                await uow.workflow_runs.update(work.run)
            await uow.workflow_steps.update_many(changed)
            jobs_now, later = await self._store_jobs(uow, jobs_now, more, now=now)
            cancel.extend(later)
            dispatch.extend(_items(jobs_now))
            events.extend(_step_events(workflow, work.run, work.stored, changed, now))
            events.extend(_run_events(workflow, run.status, run, work.run, now))
        if events:
            await uow.events.append(events)
        return StepReport(dispatch=tuple(dispatch), cancel=tuple(cancel), abandoned=frozenset(abandoned))

    async def _advance(self, uow: UnitOfWork, workflow: Workflow, work: _Working, outcome: StepOutcome) -> tuple[RunId, ...]:
        """Apply ``outcome`` to ``work``, loading the steps :func:`advance` asks for; return the
        job runs to cancel."""
        while True:
            try:
                result = advance(
                    workflow, work.run, list(work.states.values()), outcome, complete=False, graph=work.graph
                )
            except MissingSteps as missing:
                if missing.keys <= work.states.keys():
                    raise  # asked for steps it was given: a bug, not a reason to loop
                await work.load(uow, missing.keys)
                continue
            work.apply(result.run, result.steps)
            return result.cancel_runs

    async def _dispatch_ready(
        self, uow: UnitOfWork, workflow: Workflow, work: _Working, *, now: datetime
    ) -> tuple[list[tuple[Run, int]], list[RunId]]:
        """Give every ready step its job run (and move it to running). A step whose endpoint is
        gone (or another tenant's) fails at once, which may make more steps ready: repeat.
        A step is ready only in the transaction that made it so: the loaded steps hold them all."""
        jobs: list[tuple[Run, int]] = []
        cancel: list[RunId] = []
        endpoints: dict[str, Any] = {}
        while not work.run.status.final:
            ready = [
                state for state in work.in_order(work.states)
                if state.status is StepStatus.READY and (state.not_before is None or state.not_before <= now)
            ]
            if not ready:
                break
            wanted = {
                workflow.step(state.step_key).target.endpoint_id
                for state in ready if isinstance(workflow.step(state.step_key).target, EndpointRef)
            } - endpoints.keys()
            if wanted:
                endpoints.update(await uow.endpoints.get_many(sorted(wanted)))
            failures: list[tuple[str, str]] = []
            for state in ready:
                step = workflow.step(state.step_key)
                job, priority, problem = _job_run(workflow, work.run, state, step, endpoints, now)
                if job is None:
                    work.states[state.step_key] = state.start(at=now, job_run_id=None)  # type: ignore[arg-type]
                    failures.append((state.step_key, problem or "cannot run"))
                    continue
                jobs.append((job, priority))
                work.states[state.step_key] = state.start(at=now, job_run_id=job.id)
            for key, problem in failures:
                if work.run.status.final:
                    break
                outcome = StepOutcome(key=key, succeeded=False, error=problem, at=now, may_retry=False)
                cancel.extend(await self._advance(uow, workflow, work, outcome))
            if not failures:
                break
        return jobs, cancel

    async def _store_jobs(
        self, uow: UnitOfWork, jobs: Sequence[tuple[Run, int]], cancel: Sequence[RunId], *, now: datetime
    ) -> tuple[list[tuple[Run, int]], list[RunId]]:
        """Store new job runs; those ``cancel`` names (a step failed after they were made, and
        halted the run) are stored canceled. Returns the job runs to dispatch and the other
        runs of ``cancel`` (older ones: canceled after the commit)."""
        doomed = set(cancel)
        kept = [(job, priority) for job, priority in jobs if job.id not in doomed]
        runs = [job if job.id not in doomed else job.cancel(at=now, reason="the run halted") for job, _ in jobs]
        if runs:
            stored = await uow.runs.add_new(runs)
            if len(stored) != len(runs):
                # the slot of a step's attempt was taken: another transaction dispatched it already
                raise Conflict("a workflow step's job run exists already; the step was dispatched twice")
        new = {job.id for job, _ in jobs}
        return kept, [run_id for run_id in cancel if run_id not in new]

    # -- canceling ----------------------------------------------------------------

    async def cancel(self, uow: UnitOfWork, run: WorkflowRun, *, now: datetime, reason: str) -> tuple[WorkflowRun, list[RunId]]:
        """Cancel ``run`` (locked by the caller) and its unfinished steps; return it and the job
        runs to cancel after the commit (:meth:`cancel_runs`)."""
        workflow = await self.version(uow, run)
        stored = {state.step_key: state for state in await uow.workflow_steps.list_for_run(run.id)}
        steps = tuple(stored[key] for key in workflow.keys if key in stored)
        result = cancel_run(run, steps, at=now, reason=reason)
        await uow.workflow_runs.update(result.run)
        await uow.workflow_steps.update_many(result.changed_steps)
        events = _step_events(workflow, result.run, stored, result.steps, now)
        events.extend(_run_events(workflow, run.status, run, result.run, now))
        await uow.events.append(events)
        jobs = [state.job_run_id for state in steps if not state.status.final and state.job_run_id is not None]
        return result.run, jobs

    async def cancel_runs(self, run_ids: Sequence[RunId], *, reason: str = "its workflow run ended") -> None:
        """Cancel the job runs among ``run_ids`` still pending or running, in a transaction of
        their own (a running one stops at its worker's next heartbeat)."""
        if not run_ids:
            return
        async with self._uow() as uow:
            runs = await uow.runs.get_many(sorted(set(run_ids)), for_update=True)
            now = self._clock.now()
            canceled = [run.cancel(at=now, reason=reason) for run in runs.values() if not run.status.final]
            if canceled:
                await uow.runs.update_many(canceled)
            await uow.commit()


# -- job runs ---------------------------------------------------------------------


def step_slot(run_id: str, key: str, attempt: int) -> str:
    """The slot of a step's job run: one per workflow run, step and attempt."""
    return f"step:{run_id}:{key}:{attempt}"


def _job_run(
    workflow: Workflow, run: WorkflowRun, state: WorkflowRunStep, step: Any, endpoints: Mapping[str, Any], now: datetime
) -> tuple[Run | None, int, str | None]:
    """The job run of a ready step and its priority, or ``None`` and why it cannot run."""
    scheduled = max(now, state.not_before) if state.not_before is not None else now
    common: dict[str, Any] = {
        "tenant_id": run.tenant_id, "source": RunSource.WORKFLOW, "scheduled_at": scheduled, "now": now,
        "params": dict(state.input or {}), "slot": step_slot(run.id, step.key, state.attempt),
        "attempt": state.attempt, "workflow_run_id": run.id, "step_key": step.key, "exclusive": False,
    }
    target = step.target
    if isinstance(target, EndpointRef):
        endpoint = endpoints.get(target.endpoint_id)
        if endpoint is None or endpoint.tenant_id != run.tenant_id:
            return None, 0, f"endpoint {target.endpoint_id} not found"
        job = Run.scheduled(endpoint_id=endpoint.id, job_id=endpoint.job_id, **common)
        priority = endpoint.priority
    else:
        task = Task(
            name=f"{workflow.slug}.{step.key}", target=target, timeout=step.timeout or DEFAULT_TIMEOUT, retry=step.retry
        )
        job = Run.scheduled(endpoint_id=None, job_id=None, task=task, **common)
        priority = 0
    if scheduled <= now:
        job = job.dispatched(at=now)  # sent right after the commit
    return job, priority, None


def _items(jobs: Iterable[tuple[Run, int]]) -> list[DispatchItem]:
    return [DispatchItem(run_id=job.id, priority=priority) for job, priority in jobs if job.dispatched_at is not None]


def _outcome(job: Run, now: datetime) -> StepOutcome:
    if job.status is RunStatus.SUCCEEDED:
        output = job.result.output if job.result is not None else None
        return StepOutcome(key=job.step_key or "", succeeded=True, output=output, at=now, job_run_id=job.id, may_retry=False)
    error = job.error or f"its job run ended {job.status}"
    if job.status is not RunStatus.FAILED and not error.startswith(str(job.status)):
        error = f"{job.status}: {error}"
    return StepOutcome(key=job.step_key or "", succeeded=False, error=error, at=now, job_run_id=job.id, may_retry=False)


def _finish_order(job: Run) -> tuple[datetime, str]:
    return (job.finished_at or job.created_at, job.id)


class _Working:
    """One workflow run being advanced in a transaction: the run, the step states loaded so far
    (``stored``, as read) and their current values (``states``)."""

    def __init__(self, run: WorkflowRun, stored: dict[str, WorkflowRunStep], graph: RunGraph) -> None:
        self.run = run
        self.graph = graph
        self.stored = stored
        self.states = dict(stored)

    async def load(self, uow: UnitOfWork, keys: Iterable[str], *, strict: bool = True) -> None:
        """Read the states of ``keys`` not loaded yet (they are unchanged in this transaction).
        ``strict``: a step missing from the store is an error, not a step to leave out."""
        missing = {key for key in keys if key not in self.states}
        if not missing:
            return
        # most of the run (a halt, a sink's end, a wide join): the whole run reads faster than a long IN list
        wanted = None if 2 * len(missing) > len(self.graph.keys) else missing
        for state in await uow.workflow_steps.list_for_run(self.run.id, keys=wanted):
            if state.step_key in missing:
                self.stored[state.step_key] = state
                self.states[state.step_key] = state
        lost = sorted(missing - self.states.keys())
        if strict and lost:
            raise NotFound("workflow step", f"{self.run.id}/{lost[0]}")

    def apply(self, run: WorkflowRun, steps: Iterable[WorkflowRunStep]) -> None:
        self.run = run
        self.states = {state.step_key: state for state in steps}

    def in_order(self, keys: Iterable[str]) -> list[WorkflowRunStep]:
        """The loaded states among ``keys``, in declared order."""
        wanted = {key for key in keys if key in self.states}
        return [self.states[key] for key in sorted(wanted, key=self.graph.position.__getitem__)]

    def changed(self) -> list[WorkflowRunStep]:
        """The states that differ from the stored ones, in declared order."""
        return self.in_order(key for key, state in self.states.items() if self.stored.get(key) != state)


# -- events -----------------------------------------------------------------------


def _run_events(
    workflow: Workflow, before: WorkflowRunStatus | None, old: WorkflowRun, new: WorkflowRun, now: datetime
) -> list[Event]:
    """``workflow.run.<status>`` when the run's status moved from ``before``."""
    if before is new.status or new.status not in _RUN_TOPICS:
        return []
    if before is None and new.status.final:
        status = WorkflowRunStatus.RUNNING  # started and finished at once: the start first
    else:
        status = new.status
    payload = {
        "workflow_run_id": new.id, "workflow_id": workflow.id, "workflow": workflow.slug,
        "version": new.workflow_version, "trigger": str(new.trigger), "status": str(status),
    }
    if status.final:
        payload["error"] = new.error
    return [Event.new(tenant_id=new.tenant_id, topic=_RUN_TOPICS[status], payload=payload, at=now)]


def _step_events(
    workflow: Workflow, run: WorkflowRun, before: Mapping[str, WorkflowRunStep], after: Iterable[WorkflowRunStep],
    now: datetime,
) -> list[Event]:
    """``workflow.step.<status>`` for each step whose status moved to one worth telling."""
    found: list[Event] = []
    for state in after:
        old = before.get(state.step_key)
        if old is not None and old.status is state.status:
            continue
        topic = _STEP_TOPICS.get(state.status)
        if topic is None:
            continue
        payload: dict[str, Any] = {
            "workflow_run_id": run.id, "workflow": workflow.slug, "step": state.step_key,
            "attempt": state.attempt, "job_run_id": state.job_run_id, "status": str(state.status),
        }
        if state.status.final and state.status is not StepStatus.SUCCEEDED:
            payload["error"] = state.error
        if state.skip_cause is not None:
            payload["skip_cause"] = str(state.skip_cause)
        found.append(Event.new(tenant_id=run.tenant_id, topic=topic, payload=payload, at=now))
    return found
