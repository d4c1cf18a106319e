"""``/v1/events``: publish an event (which may start workflows) and read the tenant's events."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from api.http.auth import needs
from api.http.openapi import errors
from api.http.schemas.events import EventList, EventOut, EventPublish
from domain.pagination import PageRequest
from domain.queries import EventQuery
from domain.tokens import Permission
from services.audit import AuditService
from services.events import EventsService
from services.tokens import Principal


class EventsController(Controller):
    path = "/events"
    tags = ["events"]

    @post("/", opt=needs(Permission.OPERATE), responses=errors(), operation_id="publishEvent", summary="Publish an event")
    async def publish_event(
        self,
        data: JSONBody[EventPublish],
        events: NamedDependency[EventsService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> EventOut:
        """Record an event with the tenant's next sequence number; every active workflow with an
        event trigger naming its topic starts a run with the payload as its input (trigger `event`).
        Topics starting with workflow., job. or endpoint. are Ostinato's own and answer 422."""
        summary = {"topic": data.topic, "payload": sorted(data.payload)}  # the names only: values may be secret
        async with audit.action(principal.actor, "event.publish", "event", summary=summary):
            event = await events.publish(principal.tenant_id, data.topic, data.payload)
        return EventOut.of(event)

    @get("/", opt=needs(Permission.READ), responses=errors(), operation_id="listEvents", summary="List events")
    async def list_events(
        self,
        events: NamedDependency[EventsService],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        topic: Annotated[str | None, QueryParameter(max_length=200, description="Only events on this topic.")] = None,
        after_seq: Annotated[
            int | None,
            QueryParameter(ge=0, le=2**63 - 1, description="Only events published after this sequence number."),
        ] = None,
    ) -> EventList:
        """The tenant's events, oldest first (by seq): those published and those Ostinato recorded
        (workflow.run.*, workflow.step.*)."""
        result = await events.list(principal.tenant_id, EventQuery(topic=topic, after_seq=after_seq, page=page))
        return EventList(items=[EventOut.of(event) for event in result.items], next_cursor=result.next_cursor)
