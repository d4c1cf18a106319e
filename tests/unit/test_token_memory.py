"""A process remembers a checked token briefly, so requests skip a database read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adapters.memory import MemoryStore
from domain.clock import FixedClock
from services.tokens import REMEMBER_FOR, TokensService, Unauthenticated


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc))


async def test_a_token_revoked_by_another_process_is_refused_once_the_memory_expires(clock: FixedClock) -> None:
    store = MemoryStore()
    api = TokensService(uow=store.unit_of_work, clock=clock)
    elsewhere = TokensService(uow=store.unit_of_work, clock=clock)
    issued = await api.create("acme", role="viewer")
    assert (await api.authenticate(issued.secret)).token_id == issued.token.id

    await elsewhere.revoke("acme", issued.token.id)

    assert (await api.authenticate(issued.secret)).token_id == issued.token.id  # remembered
    clock.advance(REMEMBER_FOR)
    with pytest.raises(Unauthenticated):
        await api.authenticate(issued.secret)


async def test_a_token_revoked_through_the_same_service_is_refused_at_once(clock: FixedClock) -> None:
    api = TokensService(uow=MemoryStore().unit_of_work, clock=clock)
    issued = await api.create("acme", role="viewer")
    await api.authenticate(issued.secret)

    await api.revoke("acme", issued.token.id)

    with pytest.raises(Unauthenticated):
        await api.authenticate(issued.secret)


async def test_remembering_can_be_switched_off(clock: FixedClock) -> None:
    store = MemoryStore()
    api = TokensService(uow=store.unit_of_work, clock=clock, remember_for=timedelta(0))
    issued = await api.create("acme", role="viewer")
    await api.authenticate(issued.secret)

    await TokensService(uow=store.unit_of_work, clock=clock).revoke("acme", issued.token.id)

    with pytest.raises(Unauthenticated):
        await api.authenticate(issued.secret)
