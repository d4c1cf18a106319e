"""Events in ``events``, numbered per tenant from ``event_sequences``."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from itertools import groupby
from typing import Any

from sqlalchemy import BigInteger, Row, String, bindparam, func, insert, literal_column, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.base import Executable

from adapters.sqlalchemy.repository import Repository
from adapters.sqlalchemy.tables import event_sequences
from adapters.sqlalchemy.tables import events as event_table
from domain.errors import AlreadyExists
from domain.events import Event, EventId, cursor_after, seq_after
from domain.ids import TenantId
from domain.pagination import Page
from domain.queries import EventQuery


def _event_values(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "tenant_id": event.tenant_id,
        "seq": event.seq,
        "topic": event.topic,
        "payload": dict(event.payload),
        "at": event.at,
    }


def _to_event(row: Row[Any]) -> Event:
    return Event(
        id=EventId(row.id),
        tenant_id=TenantId(row.tenant_id),
        seq=row.seq,
        topic=row.topic,
        payload=dict(row.payload),
        at=row.at,
    )


@functools.cache
def _numbered_insert() -> Executable:
    """PostgreSQL: reserve a tenant's numbers and store its events in one statement. The upsert of
    its ``event_sequences`` row (which stays locked until commit) is a CTE; the events, bound as
    one array per column, take ``last_seq - :count + <their position>``; returns ``(id, seq)``.
    Built once: the orchestrator appends at every step's end."""
    count = bindparam("count", type_=BigInteger())
    tenant_id = bindparam("tenant_id", type_=String())
    reserved = (
        postgresql.insert(event_sequences)
        .values(tenant_id=tenant_id, last_seq=count)
        .on_conflict_do_update(
            index_elements=[event_sequences.c.tenant_id],
            set_={"last_seq": event_sequences.c.last_seq + literal_column("excluded.last_seq")},
        )
        .returning(event_sequences.c.last_seq)
        .cte("reserved")
    )
    rows = (
        func.unnest(
            bindparam("ids", type_=postgresql.ARRAY(event_table.c.id.type)),
            bindparam("topics", type_=postgresql.ARRAY(event_table.c.topic.type)),
            bindparam("payloads", type_=postgresql.ARRAY(postgresql.JSONB())),
            bindparam("ats", type_=postgresql.ARRAY(postgresql.TIMESTAMP(timezone=True))),
        )
        .table_valued("id", "topic", "payload", "at", with_ordinality="position")
        .render_derived()
    )
    numbered = select(
        rows.c.id, tenant_id, reserved.c.last_seq - count + rows.c.position, rows.c.topic, rows.c.payload, rows.c.at
    ).select_from(reserved.join(rows, true()))
    return (
        insert(event_table)
        .from_select(["id", "tenant_id", "seq", "topic", "payload", "at"], numbered)
        .returning(event_table.c.id, event_table.c.seq)
    )


class SqlAlchemyEventRepository(Repository):
    async def append(self, events: Sequence[Event]) -> Sequence[Event]:
        """Reserve each tenant's numbers with one upsert of its ``event_sequences`` row (in tenant
        order), which keeps the row locked until commit, and store the events: on PostgreSQL one
        statement per tenant (:func:`_numbered_insert`), on SQLite the upsert and one batched insert."""
        if not events:
            return []
        if self._dialect == "postgresql":
            return await self._append_numbered(events)
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        first: dict[TenantId, int] = {}
        for tenant_id, group in groupby(sorted(events, key=lambda e: e.tenant_id), key=lambda e: e.tenant_id):
            count = sum(1 for _ in group)
            upsert = dialect.insert(event_sequences).values(tenant_id=tenant_id, last_seq=count)
            upsert = upsert.on_conflict_do_update(
                index_elements=[event_sequences.c.tenant_id],
                set_={"last_seq": event_sequences.c.last_seq + upsert.excluded.last_seq},
            ).returning(event_sequences.c.last_seq)
            last = (await self._execute(upsert)).scalar_one()
            first[tenant_id] = last - count + 1
        numbered: list[Event] = []
        for event in events:
            numbered.append(event.numbered(first[event.tenant_id]))
            first[event.tenant_id] += 1
        await self._execute_many(
            insert(event_table),
            [_event_values(event) for event in numbered],
            unique=lambda: AlreadyExists("event", events[0].id),
        )
        return numbered

    async def _append_numbered(self, events: Sequence[Event]) -> Sequence[Event]:
        seqs: dict[EventId, int] = {}
        for tenant_id, group in groupby(sorted(events, key=lambda e: e.tenant_id), key=lambda e: e.tenant_id):
            mine = list(group)
            parameters = {
                "tenant_id": tenant_id, "count": len(mine), "ids": [e.id for e in mine],
                "topics": [e.topic for e in mine], "payloads": [dict(e.payload) for e in mine],
                "ats": [e.at for e in mine],
            }
            stored = await self._execute(
                _numbered_insert(), parameters, unique=lambda: AlreadyExists("event", events[0].id)
            )
            seqs.update({row.id: row.seq for row in stored})
        return [event.numbered(seqs[event.id]) for event in events]

    async def list(self, tenant_id: TenantId, query: EventQuery) -> Page[Event]:
        c = event_table.c
        after = max(query.after_seq or 0, seq_after(query.page.cursor))
        statement = select(event_table).where(c.tenant_id == tenant_id, c.seq > after)
        if query.topic is not None:
            statement = statement.where(c.topic == query.topic)
        rows = (await self._execute(statement.order_by(c.seq).limit(query.page.limit + 1))).all()
        items = [_to_event(row) for row in rows[: query.page.limit]]
        next_cursor = cursor_after(items[-1]) if len(rows) > query.page.limit else None
        return Page(items=items, next_cursor=next_cursor)
