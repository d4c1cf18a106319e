"""On PostgreSQL, what a unit of work sends besides its statements: nothing at checkout, and
no transaction for a read-only one; a connection the server closed is replaced at checkout."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import URL

from adapters.sqlalchemy import SqlAlchemyStore
from domain.errors import NotFound
from tests.builders import a_job
from tests.contract.support import given_stored

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("store", ["postgres"], indirect=True)]


async def _backend_pid(uow) -> int:
    return (await uow.connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()


async def _simple_queries(store: SqlAlchemyStore, block) -> list[str]:
    """The simple-protocol queries (``BEGIN``, ``ROLLBACK``, a ping) sent on the pool's one
    connection while ``block`` runs; the statements themselves are prepared, and not listed."""
    sent: list[str] = []
    async with store.unit_of_work() as uow:
        raw = await uow.connection.get_raw_connection()
        raw.driver_connection.add_query_logger(lambda record: sent.append(record.query.strip().rstrip(";")))
    await asyncio.sleep(0.05)  # the logger is called soon after, not during, each query
    sent.clear()
    await block()
    await asyncio.sleep(0.05)
    return sent


@contextlib.asynccontextmanager
async def _another(url: URL, **engine_kwargs):
    """A store of its own at ``url``, disposed of afterwards."""
    other = SqlAlchemyStore.from_url(url.render_as_string(hide_password=False), **engine_kwargs)
    try:
        yield other
    finally:
        await other.dispose()


@pytest.fixture
async def single(store: SqlAlchemyStore):
    """A store over the same database whose pool holds one connection, so every unit of work uses it."""
    async with _another(store.engine.url, pool_size=1, max_overflow=0) as single:
        yield single


async def test_a_read_only_unit_of_work_sends_no_begin_nor_rollback(single):
    job = a_job()
    await given_stored(single, job)

    async def read() -> None:
        async with single.unit_of_work(read_only=True) as uow:
            assert await uow.jobs.get(job.id, tenant_id=None) == job

    assert await _simple_queries(single, read) == []


async def test_a_read_write_unit_of_work_sends_its_transaction_and_no_ping(single):
    job = a_job()

    async def write() -> None:
        async with single.unit_of_work() as uow:
            await uow.jobs.add(job)
            await uow.commit()

    assert await _simple_queries(single, write) == ["BEGIN", "COMMIT"]


async def test_a_connection_back_from_a_read_only_unit_of_work_runs_transactions_again(single):
    job = a_job()

    async def read_then_write() -> None:
        async with single.unit_of_work(read_only=True) as uow:
            with pytest.raises(NotFound):
                await uow.jobs.get(job.id, tenant_id=None)
        async with single.unit_of_work() as uow:
            await uow.jobs.add(job)  # rolled back: the block does not commit

    # (SQLAlchemy restores the isolation level it found on connecting, and names it in BEGIN)
    sent = await _simple_queries(single, read_then_write)
    assert [query.split()[0] for query in sent] == ["BEGIN", "ROLLBACK"]
    assert sent[0] in ("BEGIN", "BEGIN ISOLATION LEVEL READ COMMITTED")
    async with single.unit_of_work(read_only=True) as uow:
        with pytest.raises(NotFound):
            await uow.jobs.get(job.id, tenant_id=None)


async def test_a_read_only_unit_of_work_sees_what_others_commit_between_its_statements(store):
    first, second = a_job(), a_job()
    await given_stored(store, first)
    async with store.unit_of_work(read_only=True) as reader:
        assert await reader.jobs.get(first.id, tenant_id=None) == first
        await given_stored(store, second)
        assert await reader.jobs.get(second.id, tenant_id=None) == second


async def test_connections_the_server_closed_are_replaced_at_checkout(store):
    # Given a pool holding a few open connections
    async def open_one() -> int:
        async with store.unit_of_work(read_only=True) as uow:
            pid = await _backend_pid(uow)
            await asyncio.sleep(0.05)  # hold it so that the others open their own
            return pid

    before = set(await asyncio.gather(*(open_one() for _ in range(3))))
    assert len(before) == 3
    # When the server ends them (as a restart does)
    admin = await asyncpg.connect(store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(before))
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the event loop sees the sockets close
    # Then the next units of work run, on new connections
    after = set(await asyncio.gather(*(open_one() for _ in range(3))))
    assert not after & before
    job = a_job()
    await given_stored(store, job)
    async with store.unit_of_work() as uow:
        assert await uow.jobs.get(job.id, tenant_id=None) == job


async def test_filling_the_pool_opens_each_of_its_connections_ahead(store: SqlAlchemyStore):
    async with _another(store.engine.url, pool_size=4) as filled:
        assert await filled.fill_pool() == 4
        opened: list[object] = []
        event.listen(filled.engine.sync_engine, "connect", lambda *_: opened.append(1))
        # four units of work held at once use those four connections: none is opened for them
        async with filled.unit_of_work() as a, filled.unit_of_work() as b, filled.unit_of_work() as c, \
                filled.unit_of_work() as d:
            assert len({await _backend_pid(uow) for uow in (a, b, c, d)}) == 4
        assert opened == []


@contextlib.asynccontextmanager
async def _silent_server():
    """The port of a server that accepts connections and never answers."""
    async def silent(reader, writer) -> None:
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@contextlib.asynccontextmanager
async def _refusing_port():
    yield 1  # nothing listens there


@pytest.mark.parametrize("server", [_refusing_port, _silent_server], ids=["refused", "silent"])
async def test_a_pool_that_cannot_reach_its_server_is_left_to_fill_on_demand(store, server, monkeypatch, caplog):
    from adapters.sqlalchemy import store as stores

    monkeypatch.setattr(stores, "FILL_POOL_TIMEOUT_S", 0.3)  # how long a silent server holds the start up
    async with server() as port, _another(store.engine.url.set(port=port), pool_size=3) as away:
        with caplog.at_level("WARNING", logger="ostinato"):
            assert await asyncio.wait_for(away.fill_pool(), timeout=5) == 0
        assert "could not open the database pool's 3 connections ahead" in caplog.text
