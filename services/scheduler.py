"""The scheduler's use cases: fire due endpoints, dispatch due runs, reconcile lost work.

A scheduler loop (``ostinato scheduler`` or inside ``ostinato serve``) calls
:meth:`SchedulerService.tick` and sleeps for the delay it returns. Any number
of schedulers may run at once: a claim locks the due endpoints for the
batch's transaction (``FOR NO KEY UPDATE SKIP LOCKED`` on PostgreSQL, the
database write lock on SQLite), so concurrent schedulers take disjoint
batches, and the unique (endpoint, slot) key is the last line: a slot fires
once whatever happens. The lease columns record who claimed an endpoint and
until when; with claim and fire in one transaction they are released on
commit.

With a ``lookahead``, a tick fires the endpoints due within that window ahead
of time (their runs are stored with the slot's time as ``scheduled_at``) and
sends their messages at once, each run with its slot as ``not_before``: a
worker holds it and starts it when the slot comes, never before. The
transaction, the broker and the message's trip are paid for before a run is
due, not after. The loop ticks again when the next endpoint is half a lookahead
away, so each tick fires the slots of about half a lookahead together and every
run is sent at least that far ahead.

Runs that were never sent (retries, runs created by hand) are sent when due, at
every tick. Runs whose message may be lost (sent more than ``redispatch_after``
ago and still pending) are swept for every ``sweep_every``, not at every tick:
that query reads every pending run. A scheduler that starts, or whose send
failed, sweeps for every due pending run at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from attrs import frozen

from domain.execution import DispatchItem, Dispatcher
from domain.ports import Clock, UnitOfWorkFactory
from domain.runs import Run, RunStatus
from services.outcomes import OutcomeRecorder, endpoint_ids


@frozen(kw_only=True)
class TickReport:
    """What one tick did, and how long the loop may sleep before the next (seconds)."""

    fired: int
    dispatched: int
    sleep_s: float


@frozen(kw_only=True)
class ReconcileReport:
    expired: int
    retried: int


class SchedulerService:
    """Fires due endpoints in batches: claim, create pending runs, advance ``next_run_at``,
    mark them dispatched, commit — then hand them to the dispatcher."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        dispatcher: Dispatcher,
        owner: str,
        batch: int = 500,
        lease: timedelta = timedelta(seconds=30),
        redispatch_after: timedelta = timedelta(seconds=60),
        max_sleep: timedelta = timedelta(seconds=1),
        lookahead: timedelta = timedelta(0),
        sweep_every: timedelta = timedelta(seconds=5),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._dispatcher = dispatcher
        self._owner = owner
        self._batch = batch
        self._lease = lease
        self._redispatch_after = redispatch_after
        self._max_sleep = max_sleep
        self._lookahead = lookahead
        self._sweep_every = sweep_every
        self._swept_at: datetime | None = None
        # After a restart, messages sent before it may be gone (in-process broker):
        # the first tick hands every due pending run to the workers again.
        self._fresh = True
        # after a failed send, sweep for a lookahead more: runs sent then were due up to that far ahead
        self._sweep_until: datetime | None = None

    async def tick(self) -> TickReport:
        """Fire one batch and send its runs (those fired ahead of their slot carry it); send the
        runs that are due and were never sent, and, every ``sweep_every``, those whose message
        may be lost. A full batch asks for no sleep (more may be due)."""
        now = self._clock.now()
        sweep = self._fresh or self._swept_at is None or now - self._swept_at >= self._sweep_every
        async with self._uow() as uow:
            endpoints = await uow.endpoints.claim_due(now + self._lookahead, self._batch, self._lease, self._owner)
            runs = [
                Run.scheduled(
                    tenant_id=e.tenant_id,
                    endpoint_id=e.id,
                    job_id=e.job_id,
                    source=e.next_run_source,
                    scheduled_at=e.next_run_at,
                    now=now,
                    exclusive=not e.allow_concurrent,
                    dispatched_at=now,  # sent after the commit: the redispatch sweep covers a crash
                )
                for e in endpoints
                if e.next_run_at is not None and e.next_run_source is not None
            ]
            fired = await uow.runs.add_new(runs)
            # an endpoint fired ahead of its slot plans its next run as of the slot
            await uow.endpoints.store_fired([e.fired(now=max(now, e.next_run_at or now)) for e in endpoints])
            # other due runs: never sent (retries), and, when sweeping, those whose message may be
            # lost (sent long ago, or before this scheduler started)
            dispatched_before = None
            if sweep:
                dispatched_before = now if self._fresh else now - self._redispatch_after
            due = await uow.runs.to_dispatch(now=now, dispatched_before=dispatched_before, limit=self._batch * 2)
            await uow.runs.mark_dispatched([r.id for r in due], at=now)
            priorities = await _priorities(uow, [*fired, *due], {e.id: e.priority for e in endpoints})
            full = len(endpoints) >= self._batch or len(due) >= self._batch * 2
            next_endpoint = None if full else await uow.endpoints.next_due_at()
            next_retry = None if full else await uow.runs.next_pending_at()
            await uow.commit()
        if sweep:
            self._swept_at = now
        self._fresh = self._sweep_until is not None and now < self._sweep_until
        items = [
            DispatchItem(
                run_id=run.id,
                priority=priorities.get(run.endpoint_id, 0),
                not_before=run.scheduled_at if run.scheduled_at > now else None,
            )
            for run in [*fired, *due]
        ]
        try:
            if items:
                await self._dispatcher.dispatch(items)
        except Exception:
            # The runs are recorded as dispatched, but their messages may not have left (and a
            # broker that went away may have lost earlier ones): the next ticks send every due
            # pending run again, instead of waiting out ``redispatch_after``, for as long as the
            # runs fired ahead now may take to fall due.
            self._fresh = True
            self._sweep_until = self._clock.now() + self._lookahead
            raise
        if full:
            sleep = 0.0
        else:
            # tick again when the next endpoint is half a lookahead away: it, and the slots of the
            # half lookahead after it, are then sent at least half a lookahead ahead
            claim_at = next_endpoint - self._lookahead / 2 if next_endpoint is not None else None
            sleep = self._sleep_until(self._clock.now(), [at for at in (claim_at, next_retry) if at is not None])
        return TickReport(fired=len(runs), dispatched=len(items), sleep_s=sleep)

    def _sleep_until(self, now, moments: Sequence) -> float:
        ceiling = self._max_sleep.total_seconds()
        if not moments:
            return ceiling
        return max(0.0, min(ceiling, (min(moments) - now).total_seconds()))

    async def reconcile(self, *, heartbeat_timeout: timedelta, recorder: OutcomeRecorder) -> ReconcileReport:
        """Expire running runs whose worker stopped sending heartbeats, and retry them per policy."""
        now = self._clock.now()
        async with self._uow() as uow:
            cutoff = now - heartbeat_timeout
            stale = await uow.runs.stale_running(heartbeat_before=cutoff, limit=self._batch)
            if not stale:
                return ReconcileReport(expired=0, retried=0)
            # lock endpoints, then runs (the order every writer uses), then look again: a worker
            # may have recorded its result or a heartbeat meanwhile
            endpoints = await uow.endpoints.get_many(endpoint_ids(stale), for_update=True)
            locked = await uow.runs.get_many([r.id for r in stale], for_update=True)
            expired = [
                run.expire(at=now) for run in locked.values()
                if run.status is RunStatus.RUNNING and (run.heartbeat_at or run.started_at or run.created_at) < cutoff
            ]
            settled = await recorder.settle(uow, expired, now=now, locked=endpoints)
            await uow.commit()
        if settled.follow_ups:  # workflow steps the expiries made ready
            await self._dispatcher.dispatch(settled.follow_ups)
        await recorder.after_commit(settled)
        return ReconcileReport(expired=len(expired), retried=len(settled.retries))


async def _priorities(uow, runs: Sequence[Run], known: dict) -> dict:
    """Each due run's endpoint priority; looks up only endpoints not claimed in this tick."""
    missing = list(set(endpoint_ids(runs)) - known.keys())
    if missing:
        found = await uow.endpoints.get_many(missing)
        known = {**known, **{eid: e.priority for eid, e in found.items()}}
    return known
