"""On PostgreSQL, round trips saved keep their guarantees: the pool hands out live connections
without a ping per checkout, and a transaction looks up only the runs it has not read or stored."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from attrs import evolve
from sqlalchemy import event, text

import adapters.sqlalchemy.engine as engine_module
from adapters.sqlalchemy import SqlAlchemyStore
from domain.errors import NotFound
from tests.builders import T0, a_run, an_endpoint
from tests.services import POSTGRES_URL

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("store", ["postgres"], indirect=True)]


async def _backend_pid(store: SqlAlchemyStore) -> int:
    async with store.unit_of_work() as uow:
        return (await uow.connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()


async def _terminate(store: SqlAlchemyStore, pid: int) -> None:
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


def _count_pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the pings of pooled asyncpg connections."""
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

    pings = [0]
    ping = AsyncAdapt_asyncpg_connection.ping

    def counted(self: Any) -> None:
        pings[0] += 1
        ping(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted)
    return pings


async def test_a_connection_in_use_a_moment_ago_is_handed_out_without_a_ping(store: SqlAlchemyStore, monkeypatch):
    pings = _count_pings(monkeypatch)
    first = await _backend_pid(store)
    for _ in range(5):
        assert await _backend_pid(store) == first
    assert pings == [0]


async def test_a_connection_the_server_closed_is_replaced_before_a_transaction_uses_it(store: SqlAlchemyStore):
    # Given a pooled connection whose server process ends (as every one does when the server restarts)
    pid = await _backend_pid(store)
    await _terminate(store, pid)
    await asyncio.sleep(0.2)  # the event loop reads the closed socket

    # Then the next transaction runs on a new connection, with no error
    assert await _backend_pid(store) != pid


async def test_a_connection_idle_for_a_while_is_pinged_and_replaced_if_dead(store: SqlAlchemyStore, monkeypatch):
    # Given a pooled connection whose close went unnoticed (its socket looks open), idle past the limit
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)
    pid = await _backend_pid(store)
    async with store.engine.connect() as connection:  # the pooled one, as the pool holds it
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
    pings = _count_pings(monkeypatch)
    monkeypatch.setattr(type(driver), "is_closed", lambda self: False)
    await _terminate(store, pid)
    await asyncio.sleep(0.2)

    # Then the ping finds it dead and the transaction gets a new connection
    assert await _backend_pid(store) != pid
    assert pings[0] >= 1


async def _a_stored_run(store: SqlAlchemyStore):
    endpoint = an_endpoint()
    run = a_run(endpoint=endpoint)
    async with store.unit_of_work() as uow:
        await uow.endpoints.add(endpoint)
        await uow.runs.add(run)
        await uow.commit()
    return run


async def test_runs_read_in_a_transaction_are_updated_without_looking_up_their_tenants_again(store: SqlAlchemyStore):
    run = await _a_stored_run(store)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with store.unit_of_work() as uow:
            current = (await uow.runs.get_many([run.id], for_update=True))[run.id]
            await uow.runs.update_many([current.start(at=T0, worker="w")])
            await uow.commit()
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)
    assert [s.split()[0] for s in statements] == ["SELECT", "UPDATE"]


async def test_a_run_read_in_a_transaction_still_refuses_an_update_under_another_tenant(store: SqlAlchemyStore):
    run = await _a_stored_run(store)
    async with store.unit_of_work() as uow:
        await uow.runs.get_many([run.id])
        with pytest.raises(NotFound):
            await uow.runs.update_many([evolve(run, tenant_id="someone-else")])


async def test_starting_an_exclusive_run_locks_its_endpoint_before_the_run_in_one_statement(store: SqlAlchemyStore):
    # Given an exclusive run, and another transaction holding its endpoint's row
    endpoint = an_endpoint()
    run = a_run(endpoint=endpoint, exclusive=True)
    async with store.unit_of_work() as uow:
        await uow.endpoints.add(endpoint)
        await uow.runs.add(run)
        await uow.commit()
    holder = await asyncpg.connect(store.engine.url.render_as_string(hide_password=False).replace("+asyncpg", ""))
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.execute("SELECT id FROM endpoints WHERE id = $1 FOR UPDATE", endpoint.id)

        # When a worker starts the run
        async def start() -> list[str]:
            async with store.unit_of_work() as uow:
                started = await uow.runs.start([run.id], at=T0, worker="w")
                await uow.commit()
            return [r.id for r in started]

        starting = asyncio.create_task(start())
        await asyncio.sleep(0.3)

        # Then it waits for the endpoint without having locked the run (the lock order: endpoints first)
        assert not starting.done()
        assert await holder.fetchval("SELECT id FROM runs WHERE id = $1 FOR UPDATE NOWAIT", run.id) == run.id
        await holding.rollback()
        assert await asyncio.wait_for(starting, 10) == [run.id]
    finally:
        await holder.close()
