"""On PostgreSQL, concurrent schedulers never claim one endpoint twice: the database locks, not Python."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from adapters.sqlalchemy import SqlAlchemyStore
from domain.ids import EndpointId
from tests.builders import T0, a_job, a_run, an_endpoint

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("store", ["postgres"], indirect=True)]

NOW = T0
LEASE = timedelta(seconds=60)
DUE = 200
CLAIMERS = 8
BATCH = 30


async def _seed(store: SqlAlchemyStore) -> set[EndpointId]:
    """``DUE`` due endpoints, and some that are not due for each reason there is; returns the due ids."""
    paused_job = a_job(status="paused")
    not_due = [
        an_endpoint(next_run_at=NOW + timedelta(seconds=1)),
        an_endpoint(next_run_at=NOW - timedelta(seconds=1), status="paused"),
        an_endpoint(next_run_at=NOW - timedelta(seconds=1), paused_until=NOW + timedelta(minutes=1)),
        an_endpoint(job=paused_job, next_run_at=NOW - timedelta(seconds=1)),
        an_endpoint(next_run_at=NOW - timedelta(seconds=1), claimed_by="x", lease_expires_at=NOW + timedelta(seconds=1)),
    ]
    due = [an_endpoint(next_run_at=NOW - timedelta(seconds=i % 17), priority=i % 3) for i in range(DUE)]
    async with store.unit_of_work() as uow:
        await uow.jobs.add(paused_job)
        for endpoint in [*not_due, *due]:
            await uow.endpoints.add(endpoint)
        await uow.commit()
    return {endpoint.id for endpoint in due}


async def _claim_until_none_left(store: SqlAlchemyStore, owner: str) -> list[EndpointId]:
    claimed: list[EndpointId] = []
    while True:
        async with store.unit_of_work() as uow:
            batch = await uow.endpoints.claim_due(NOW, BATCH, LEASE, owner)
            await asyncio.sleep(0.005)  # hold the row locks a moment, so claimers overlap
            await uow.commit()
        if not batch:
            return claimed
        assert all(endpoint.claimed_by == owner for endpoint in batch)
        claimed.extend(endpoint.id for endpoint in batch)


async def _claim_concurrently(stores: list[SqlAlchemyStore]) -> dict[str, list[EndpointId]]:
    owners = [f"c{i}" for i in range(CLAIMERS)]
    results = await asyncio.gather(
        *(_claim_until_none_left(stores[i % len(stores)], owner) for i, owner in enumerate(owners))
    )
    return dict(zip(owners, results))


def _assert_each_due_endpoint_claimed_exactly_once(claims: dict[str, list[EndpointId]], due: set[EndpointId]) -> None:
    handed_out = Counter(endpoint_id for ids in claims.values() for endpoint_id in ids)
    assert [endpoint_id for endpoint_id, times in handed_out.items() if times > 1] == []
    assert set(handed_out) == due
    assert sum(1 for ids in claims.values() if ids) >= 2, "the claimers did not overlap; the test proves nothing"


async def test_concurrent_claimers_on_one_pool_never_share_an_endpoint(store: SqlAlchemyStore) -> None:
    due = await _seed(store)

    claims = await _claim_concurrently([store])

    _assert_each_due_endpoint_claimed_exactly_once(claims, due)
    async with store.unit_of_work() as uow:
        stored = await uow.endpoints.get_many(sorted(due))
    owner_of = {endpoint_id: owner for owner, ids in claims.items() for endpoint_id in ids}
    assert {e.id: e.claimed_by for e in stored.values()} == owner_of
    assert {e.lease_expires_at for e in stored.values()} == {NOW + LEASE}


async def test_concurrent_claimers_on_separate_engines_never_share_an_endpoint(
    store: SqlAlchemyStore, postgres_database: str
) -> None:
    due = await _seed(store)
    engines = [SqlAlchemyStore.from_url(postgres_database, pool_size=1, max_overflow=0) for _ in range(CLAIMERS)]
    try:
        claims = await _claim_concurrently(engines)
    finally:
        await asyncio.gather(*(engine.dispose() for engine in engines))

    _assert_each_due_endpoint_claimed_exactly_once(claims, due)


async def test_a_claimer_skips_rows_another_transaction_holds_instead_of_waiting(store: SqlAlchemyStore) -> None:
    due = await _seed(store)
    async with store.unit_of_work() as holder:
        # Given one transaction that claimed a batch and has not committed
        held = {e.id for e in await holder.endpoints.claim_due(NOW, BATCH, LEASE, "holder")}

        # When another claims meanwhile
        async with store.unit_of_work() as other:
            taken = {e.id for e in await asyncio.wait_for(other.endpoints.claim_due(NOW, DUE, LEASE, "other"), 5)}
            await other.commit()

        # Then it got every other due endpoint at once, and none of the held ones
        assert len(held) == BATCH
        assert taken == due - held
        await holder.commit()


async def test_a_claimed_endpoint_is_not_claimed_again_before_its_lease_ends(store: SqlAlchemyStore) -> None:
    endpoint = an_endpoint(next_run_at=NOW)
    async with store.unit_of_work() as uow:
        await uow.endpoints.add(endpoint)
        await uow.commit()

    async def claim(at_s: float, owner: str) -> list[str | None]:
        async with store.unit_of_work() as uow:
            claimed = await uow.endpoints.claim_due(NOW + timedelta(seconds=at_s), 10, LEASE, owner)
            await uow.commit()
        return [e.claimed_by for e in claimed]

    assert await claim(0, "first") == ["first"]
    assert await claim(1, "second") == []
    assert await claim(LEASE.total_seconds() - 0.001, "second") == []
    assert await claim(LEASE.total_seconds(), "third") == ["third"]


async def test_marking_runs_dispatched_skips_the_runs_a_starting_worker_holds_instead_of_waiting(
    store: SqlAlchemyStore,
) -> None:
    endpoint = an_endpoint(next_run_at=NOW)
    runs = [a_run(endpoint=endpoint, scheduled_at=NOW, slot=f"slot-{i}") for i in range(4)]
    async with store.unit_of_work() as uow:
        await uow.endpoints.add(endpoint)
        await uow.runs.add_new(runs)
        await uow.commit()
    ids = sorted(run.id for run in runs)

    async with store.unit_of_work() as worker:
        # Given a worker that locked two runs in id order, as a start does, and has not committed
        await worker.runs.get_many(ids[:2], for_update=True)

        # When another unit of work marks all of them dispatched, in the opposite order
        async with store.unit_of_work() as scheduler:
            await asyncio.wait_for(scheduler.runs.mark_dispatched(ids[::-1], at=NOW), 5)
            await scheduler.commit()
        await worker.commit()

    # Then it did not wait (no deadlock is possible), and marked only the runs nobody held
    async with store.unit_of_work() as uow:
        stored = await uow.runs.get_many(ids)
    assert [stored[i].dispatched_at for i in ids] == [None, None, NOW, NOW]
