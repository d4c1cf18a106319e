"""Events in memory, numbered per tenant."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.memory.store import MemoryStore
from domain.errors import AlreadyExists
from domain.events import Event, cursor_after, seq_after
from domain.ids import TenantId
from domain.pagination import Page
from domain.queries import EventQuery


class MemoryEventRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def append(self, events: Sequence[Event]) -> Sequence[Event]:
        ids = [event.id for event in events]
        if len(set(ids)) != len(ids) or any(event_id in self._store.events for event_id in ids):
            raise AlreadyExists("event", next(i for i in ids if i in self._store.events or ids.count(i) > 1))
        numbered: list[Event] = []
        for event in events:
            seq = self._store.event_seqs.get(event.tenant_id, 0) + 1
            self._store.event_seqs[event.tenant_id] = seq
            stored = event.numbered(seq)
            self._store.events[stored.id] = stored
            numbered.append(stored)
        return numbered

    async def list(self, tenant_id: TenantId, query: EventQuery) -> Page[Event]:
        after = max(query.after_seq or 0, seq_after(query.page.cursor))
        found = sorted(
            (
                event for event in self._store.events.values()
                if event.tenant_id == tenant_id and event.seq > after
                and (query.topic is None or event.topic == query.topic)
            ),
            key=lambda event: event.seq,
        )
        chosen = found[: query.page.limit]
        next_cursor = cursor_after(chosen[-1]) if len(found) > query.page.limit else None
        return Page(items=chosen, next_cursor=next_cursor)

