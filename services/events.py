"""Event use cases: publish an event (which starts the workflows its topic triggers), read events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.events import Event
from domain.ids import TenantId
from domain.pagination import Page
from domain.ports import Clock, UnitOfWorkFactory
from domain.queries import EventQuery
from domain.workflows import TriggerKind, WorkflowStatus
from services.orchestrator import Launched
from services.workflows import WorkflowsService


class EventsService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, workflows: WorkflowsService) -> None:
        self._uow = uow
        self._clock = clock
        self._workflows = workflows

    async def publish(self, tenant_id: TenantId, topic: str, payload: Mapping[str, Any] | None = None) -> Event:
        """Record an event with the tenant's next ``seq`` and start a run (trigger ``event``, input
        ``payload``) of every active workflow with an event trigger naming ``topic``, in one
        transaction: the event is stored exactly when its runs are. Topics starting with
        ``workflow.``, ``job.`` or ``endpoint.`` are Ostinato's own and refused."""
        event = Event.published(tenant_id=tenant_id, topic=topic, payload=payload, at=self._clock.now())
        async with self._uow() as uow:
            triggered = await uow.workflows.with_event_trigger(tenant_id, topic)
        # plans are made outside the transaction (an AI planner may take a while)
        prepared = [
            await self._workflows.prepare(workflow, event.payload, trigger=TriggerKind.EVENT) for workflow in triggered
        ]
        launched: list[Launched] = []
        async with self._uow() as uow:
            events: list[Event] = [event]
            active = {w.id for w in await uow.workflows.with_event_trigger(tenant_id, topic)} if prepared else set()
            for one in prepared:
                if one.workflow.id in active and one.workflow.status is WorkflowStatus.ACTIVE:
                    launched.append(await self._workflows.launch(uow, one, events=events))
            stored = await uow.events.append(events)
            await uow.commit()
        await self._workflows.dispatch(launched)
        return stored[0]

    async def list(self, tenant_id: TenantId, query: EventQuery | None = None) -> Page[Event]:
        """A page of the tenant's events in the order they were recorded (``seq`` ascending)."""
        async with self._uow() as uow:
            return await uow.events.list(tenant_id, query or EventQuery())
