"""Cron triggers of workflows: the scheduler loop fires them on each tick.

A tick claims due triggers with a lease (concurrent schedulers take disjoint
ones), plans each run outside any transaction, then in one transaction per
trigger moves ``next_fire_at`` from the slot to the next one (a
compare-and-set) and stores the run: the transaction that moves the slot is
the only one that may start its run, so a slot fires once whatever the
number of schedulers, and a scheduler killed after its claim leaves the
slot to the next claimer when the lease ends. A slot missed while no
scheduler ran fires once, late; the slots in between are not caught up.
The run's input is ``{"scheduled_at": <the slot, ISO 8601 UTC>}``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from attrs import frozen

from domain.errors import DomainError
from domain.events import Event
from domain.ports import Clock, UnitOfWorkFactory
from domain.runs import slot_key
from domain.workflows import TriggerKind, WorkflowStatus
from services.orchestrator import Launched
from services.workflows import WorkflowsService

log = logging.getLogger("ostinato")


@frozen(kw_only=True)
class TriggerTick:
    """Runs started by one tick, and the earliest next slot of any cron trigger (if any)."""

    fired: int
    next_at: datetime | None


class WorkflowTriggersService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        workflows: WorkflowsService,
        owner: str,
        batch: int = 100,
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._workflows = workflows
        self._owner = owner
        self._batch = batch
        self._lease = lease

    async def tick(self, now: datetime | None = None) -> TriggerTick:
        """Fire the cron triggers due by ``now`` (default: the clock's time)."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            due = await uow.workflows.due_cron(now, self._batch, lease=self._lease, owner=self._owner)
            await uow.commit()
        fired = 0
        for trigger in due:
            try:
                fired += await self._fire(trigger, now)
            except DomainError as exc:  # a workflow that cannot run now must not stop the others
                log.warning("cron trigger %s of workflow %s did not fire: %s", trigger.id, trigger.workflow_id, exc)
        async with self._uow() as uow:
            next_at = await uow.workflows.next_cron_at()
        return TriggerTick(fired=fired, next_at=next_at)

    async def _fire(self, trigger, now: datetime) -> int:
        async with self._uow() as uow:
            workflow = await uow.workflows.get_by_id(trigger.workflow_id, tenant_id=trigger.tenant_id)
        following = trigger.following(now)
        prepared = None
        if workflow.status is WorkflowStatus.ACTIVE:
            prepared = await self._workflows.prepare(
                workflow, {"scheduled_at": slot_key(trigger.next_fire_at)}, trigger=TriggerKind.CRON
            )
        launched: Launched | None = None
        async with self._uow() as uow:
            if not await uow.workflows.fire_cron(trigger, next_fire_at=following):
                return 0  # another scheduler fired this slot, or the trigger changed meanwhile
            if prepared is not None:
                events: list[Event] = []
                launched = await self._workflows.launch(uow, prepared, events=events)
                await uow.events.append(events)
            await uow.commit()
        if launched is None:
            return 0
        await self._workflows.dispatch([launched])
        return 1
