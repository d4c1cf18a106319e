"""What happens after a run ends: retries with backoff, dead letters, failure counts, auto-pause.

Shared by the workers (a run finished) and the reconciler (a run's worker died).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from attrs import frozen

from domain.endpoints import EndpointStatus, JobEndpoint
from domain.ids import EndpointId
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
    """Finished runs as stored, and the retries created for them."""

    final: list[Run]
    retries: list[Run]


class OutcomeRecorder:
    """Stores finished runs and their consequences in the caller's unit of work.

    A failed, timed-out or expired run whose policy allows another attempt gets
    a new pending run (source ``retry``, attempt + 1, slot ``retry:<run id>``)
    scheduled after the policy's backoff. Otherwise the run is dead-lettered and
    its endpoint's ``failure_count`` grows (auto-pausing at ``auto_pause_after``);
    a success resets the count.
    """

    def __init__(self, *, rand: Callable[[], float] = random.random) -> None:
        self._rand = rand

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
        await uow.runs.update_many(final)
        stored = await uow.runs.add_new(retries)
        if changed:
            await uow.endpoints.update_many(list(changed.values()))
        return Settled(final=final, retries=list(stored))

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
