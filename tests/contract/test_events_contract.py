"""The EventRepository contract: per-tenant numbering, order and pages, on every storage adapter."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from domain.errors import AlreadyExists, ValidationFailed
from domain.events import Event
from domain.pagination import Cursor, PageRequest
from domain.queries import EventQuery
from tests.builders import OTHER_TENANT, T0, TENANT
from tests.contract.support import every_page

SECOND = timedelta(seconds=1)


def an_event(topic="usage.imported", tenant_id=TENANT, at=T0, payload=None):
    return Event.new(tenant_id=tenant_id, topic=topic, payload=payload if payload is not None else {"n": 1}, at=at)


async def append(store, *events, commit=True):
    async with store.unit_of_work() as uow:
        numbered = await uow.events.append(list(events))
        if commit:
            await uow.commit()
    return numbered


async def listed(store, tenant_id=TENANT, **query):
    async with store.unit_of_work() as uow:
        return await uow.events.list(tenant_id, EventQuery(**query))


async def test_appended_events_are_numbered_per_tenant_in_the_order_given(store):
    first = await append(store, an_event("a"), an_event("b", tenant_id=OTHER_TENANT), an_event("c"))
    second = await append(store, an_event("d"), an_event("e", tenant_id=OTHER_TENANT))

    assert [(e.topic, e.seq) for e in first + second] == [("a", 1), ("b", 1), ("c", 2), ("d", 3), ("e", 2)]


async def test_an_event_reads_back_exactly(store):
    event = an_event(payload={"customer": "c-7", "items": [1, 2.5, None, {"ü": True}]})
    [numbered] = await append(store, event)

    [found] = (await listed(store)).items

    assert found == numbered == event.numbered(1)
    assert found.at == T0


async def test_events_are_listed_in_seq_order_after_a_seq_and_by_topic(store):
    await append(store, *(an_event("ticks" if i % 2 else "tocks", at=T0 + i * SECOND) for i in range(1, 7)))
    await append(store, an_event("ticks", tenant_id=OTHER_TENANT))

    assert [e.seq for e in (await listed(store)).items] == [1, 2, 3, 4, 5, 6]
    assert [e.seq for e in (await listed(store, after_seq=4)).items] == [5, 6]
    assert [e.seq for e in (await listed(store, topic="ticks")).items] == [1, 3, 5]
    assert [e.seq for e in (await listed(store, topic="ticks", after_seq=1)).items] == [3, 5]
    assert (await listed(store, after_seq=6)).items == []


@pytest.mark.parametrize(("count", "limit"), [(7, 3), (4, 4), (3, 1)])
async def test_pages_follow_seq_without_repeating_or_losing_an_event(store, count, limit):
    await append(store, *(an_event(at=T0) for _ in range(count)))

    async def fetch(page: PageRequest):
        return await listed(store, page=page)

    pages = await every_page(fetch, limit=limit)
    assert [e.seq for page in pages for e in page.items] == list(range(1, count + 1))


async def test_a_cursor_of_another_list_is_refused(store):
    await append(store, an_event())
    with pytest.raises(ValidationFailed) as refused:
        await listed(store, page=PageRequest(cursor=Cursor(T0, "0190a0a0-0000-7000-8000-000000000001")))
    assert refused.value.errors[0].path == "cursor"


async def test_numbers_of_a_rolled_back_append_are_given_again(store):
    await append(store, an_event("kept"))
    await append(store, an_event("lost"), commit=False)

    [next_one] = await append(store, an_event("next"))

    assert next_one.seq == 2
    assert [e.topic for e in (await listed(store)).items] == ["kept", "next"]


async def test_an_event_id_is_stored_once(store):
    event = an_event()
    await append(store, event)
    with pytest.raises(AlreadyExists):
        await append(store, event)


async def test_concurrent_appends_get_distinct_numbers_without_gaps(store):
    async def one(index: int) -> list[Event]:
        return list(await append(store, an_event(f"t{index}"), an_event(f"t{index}")))

    results = await asyncio.gather(*(one(i) for i in range(6)))

    seqs = sorted(e.seq for batch in results for e in batch)
    assert seqs == list(range(1, 13))
    for batch in results:
        assert batch[1].seq == batch[0].seq + 1
