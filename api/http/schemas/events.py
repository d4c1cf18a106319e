"""Events: an append-only record per tenant, numbered in order; a topic may start workflows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta, Struct

from api.http.schemas.common import Id, NextCursor, utc
from api.http.schemas.workflows import Payload, Topic
from domain.events import Event

Seq = Annotated[int, Meta(ge=1, description="The event's number in its tenant: 1, 2, 3, … in publishing order.")]


class EventPublish(Struct, kw_only=True, forbid_unknown_fields=True):
    """An event to publish on `topic` (not one starting with workflow., job. or endpoint.: those
    are Ostinato's own); every active workflow with an event trigger naming the topic starts a run
    with `payload` (at most 64 KiB of JSON) as its input."""

    topic: Topic
    payload: Payload = {}


class EventOut(Struct, kw_only=True):
    """A published event."""

    id: Id
    seq: Seq
    topic: Topic
    payload: Payload
    at: Annotated[datetime, Meta(description="When it was published (UTC).")]

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls(id=event.id, seq=event.seq, topic=event.topic, payload=dict(event.payload), at=utc(event.at))


class EventList(Struct, kw_only=True):
    """A page of events, oldest first (by seq)."""

    items: Annotated[list[EventOut], Meta(description="The events on this page.")]
    next_cursor: NextCursor
