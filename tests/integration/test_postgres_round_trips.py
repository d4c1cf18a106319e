"""On PostgreSQL, round trips saved keep their guarantees: a transaction looks up only the runs it
has not read or stored."""

from __future__ import annotations

from typing import Any

import pytest
from attrs import evolve
from sqlalchemy import event

from adapters.sqlalchemy import SqlAlchemyStore
from domain.errors import NotFound
from tests.builders import T0, a_run, an_endpoint

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("store", ["postgres"], indirect=True)]


async def test_runs_read_in_a_transaction_are_updated_without_looking_up_their_tenants_again(store: SqlAlchemyStore):
    endpoint = an_endpoint()
    run = a_run(endpoint=endpoint)
    async with store.unit_of_work() as uow:
        await uow.endpoints.add(endpoint)
        await uow.runs.add(run)
        await uow.commit()
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
    endpoint = an_endpoint()
    run = a_run(endpoint=endpoint)
    async with store.unit_of_work() as uow:
        await uow.endpoints.add(endpoint)
        await uow.runs.add(run)
        await uow.commit()
    async with store.unit_of_work() as uow:
        await uow.runs.get_many([run.id])
        with pytest.raises(NotFound):
            await uow.runs.update_many([evolve(run, tenant_id="someone-else")])
