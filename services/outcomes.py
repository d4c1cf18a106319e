"""What happens after a run ends: retries with backoff, dead letters, failure counts, auto-pause,
and (through an optional :class:`StepListener`) the workflow steps the runs executed.

Shared by the workers (a run finished), the reconciler (a run's worker died)
and an operator's cancel.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from attrs import field, frozen

from domain.endpoints import EndpointStatus, JobEndpoint
from domain.execution import DispatchItem
from domain.ids import EndpointId, RunId
from domain.ports import UnitOfWork
from domain.retry import RetryPolicy
from domain.runs import Run, RunSource, RunStatus


@frozen
class Finished:
    """A run in a final state, and whether another attempt could help."""

    run: Run
    retryable: bool = True


@frozen
class Settled:
    """Finished runs as stored, the retries created for them, and what a listener asks for after
    the commit: runs to dispatch (workflow steps now ready; already marked dispatched) and runs
    to cancel (:meth:`OutcomeRecorder.after_commit`)."""

    final: list[Run]
    retries: list[Run]
    follow_ups: list[DispatchItem] = field(factory=list)
    cancel: list[RunId] = field(factory=list)


class ListenerReport(Protocol):
    dispatch: Sequence[DispatchItem]
    cancel: Sequence[RunId]
    abandoned: frozenset[RunId]


class StepListener(Protocol):
    """Told, in the transaction that stores them, which runs ended (the workflow orchestrator).

    ``runs_settled`` sees the final runs and the retries about to be created
    for some of them, before either is stored; it may store runs of its own
    (marked dispatched: they are dispatched after the commit), and names the
    runs whose retries nobody waits for any more (``abandoned``: not created).
    It must lock nothing the caller's lock order puts before the runs it was
    given (see :mod:`domain.ports`). ``cancel_runs`` cancels, after the commit,
    the runs its report asked to cancel."""

    async def runs_settled(
        self, uow: UnitOfWork, final: Sequence[Run], retries: Sequence[Run], *, now: datetime
    ) -> ListenerReport: ...

    async def cancel_runs(self, run_ids: Sequence[RunId]) -> None: ...


class OutcomeRecorder:
    """Stores finished runs and their consequences in the caller's unit of work.

    A failed, timed-out or expired run whose policy allows another attempt gets
    a new pending run (source ``retry``, attempt + 1, slot ``retry:<run id>``)
    scheduled after the policy's backoff. Otherwise the run is dead-lettered and
    its endpoint's ``failure_count`` grows (auto-pausing at ``auto_pause_after``);
    a success resets the count.
    """

    def __init__(self, *, rand: Callable[[], float] = random.random, listener: StepListener | None = None) -> None:
        self._rand = rand
        self._listener = listener

    @property
    def listener(self) -> StepListener | None:
        return self._listener

    async def after_commit(self, settled: Settled) -> None:
        """Cancel the runs ``settled`` asks to cancel (a halted workflow's running steps), in a
        transaction of their own; call it after the settling transaction commits."""
        if settled.cancel and self._listener is not None:
            await self._listener.cancel_runs(settled.cancel)

    async def record(
        self, uow: UnitOfWork, finished: Sequence[Finished | Run], *, now: datetime,
        locked: dict[str, JobEndpoint] | None = None,
    ) -> list[Run]:
        """Store ``finished`` (runs already moved to a final state); return the retries created.
        ``locked``: the runs' endpoints, when the caller has already locked them."""
        return (await self.settle(uow, finished, now=now, locked=locked)).retries

    async def settle(
        self, uow: UnitOfWork, finished: Sequence[Finished | Run], *, now: datetime,
        locked: dict[str, JobEndpoint] | None = None,
    ) -> Settled:
        """As :meth:`record`, and also return the finished runs as stored (dead-lettered or not)."""
        items = [f if isinstance(f, Finished) else Finished(f) for f in finished]
        if not items:
            return Settled(final=[], retries=[])
        endpoints = locked
        if endpoints is None:
            endpoints = await uow.endpoints.get_many(endpoint_ids(item.run for item in items), for_update=True)
        changed: dict[str, JobEndpoint] = {}
        final: list[Run] = []
        retries: list[Run] = []
        for item in items:
            run = item.run
            endpoint = (changed.get(run.endpoint_id) or endpoints.get(run.endpoint_id)) if run.endpoint_id else None
            if run.status is RunStatus.SUCCEEDED:
                final.append(run)
                if endpoint is not None and endpoint.failure_count:
                    changed[endpoint.id] = endpoint.record_success(now=now)
                continue
            policy = _policy(run, endpoint)
            if run.status is RunStatus.CANCELED or policy is None:
                final.append(run)
                continue
            if item.retryable and policy.allows_another(run.attempt):
                final.append(run)
                retries.append(self._retry_of(run, policy, now))
                continue
            final.append(run.dead_letter())
            if endpoint is not None:
                changed[endpoint.id] = endpoint.record_failure(now=now)
        follow_ups: list[DispatchItem] = []
        cancel: list[RunId] = []
        if self._listener is not None:
            # before the writes below, which touch only rows this transaction holds already:
            # the listener's event sequence lock is the last one taken
            report = await self._listener.runs_settled(uow, final, retries, now=now)
            if report.abandoned:
                retries = [retry for retry in retries if retry.retry_of not in report.abandoned]
            follow_ups, cancel = list(report.dispatch), list(report.cancel)
        await uow.runs.update_many(final)
        stored = await uow.runs.add_new(retries)
        if changed:
            await uow.endpoints.update_many(list(changed.values()))
        return Settled(final=final, retries=list(stored), follow_ups=follow_ups, cancel=cancel)

    def _retry_of(self, run: Run, policy: RetryPolicy, now: datetime) -> Run:
        delay = policy.delay(run.attempt, rand=self._rand())
        return Run.scheduled(
            tenant_id=run.tenant_id,
            endpoint_id=run.endpoint_id,
            job_id=run.job_id,
            source=RunSource.RETRY,
            scheduled_at=now + delay,
            now=now,
            params=run.params,
            slot=f"retry:{run.id}",
            attempt=run.attempt + 1,
            retry_of=run.id,
            workflow_run_id=run.workflow_run_id,
            exclusive=run.exclusive,
            step_key=run.step_key,
            task=run.task,
        )


def endpoint_ids(runs: Iterable[Run]) -> list[EndpointId]:
    """The distinct endpoint ids of ``runs`` (task runs have none), sorted: the lock order."""
    return sorted({run.endpoint_id for run in runs if run.endpoint_id is not None})


def _policy(run: Run, endpoint: JobEndpoint | None) -> RetryPolicy | None:
    """The retry policy that governs ``run``: its endpoint's, or its task's; ``None`` when its
    endpoint is gone or archived (no more attempts for a retired endpoint)."""
    if run.task is not None:
        return run.task.retry
    if endpoint is None or endpoint.status is EndpointStatus.ARCHIVED:
        return None
    return endpoint.retry
