"""The UnitOfWork contract: one transaction that rolls back unless committed; a read-only one that only reads (``store`` fixture)."""

from __future__ import annotations

import pytest
from attrs import evolve

from domain.errors import NotFound
from domain.jobs import JobStatus
from tests.builders import T0, a_job, a_run, an_endpoint
from tests.contract.support import given_stored


class Boom(Exception):
    pass


async def job_exists(store, job) -> bool:
    async with store.unit_of_work() as uow:
        try:
            await uow.jobs.get(job.id, tenant_id=None)
        except NotFound:
            return False
        return True


async def stored_job(store, job):
    async with store.unit_of_work() as uow:
        return await uow.jobs.get(job.id, tenant_id=None)


async def test_changes_without_commit_are_rolled_back(store):
    job = a_job()
    async with store.unit_of_work() as uow:
        await uow.jobs.add(job)
    assert not await job_exists(store, job)


async def test_a_unit_of_work_reads_its_own_uncommitted_writes(store):
    job = a_job()
    endpoint = an_endpoint(job=job)
    async with store.unit_of_work() as uow:
        await uow.jobs.add(job)
        await uow.endpoints.add(endpoint)
        assert await uow.jobs.get(job.id, tenant_id=job.tenant_id) == job
        assert await uow.endpoints.get(endpoint.id, tenant_id=None) == endpoint


async def test_commit_persists_the_changes(store):
    job = a_job()
    async with store.unit_of_work() as uow:
        await uow.jobs.add(job)
        await uow.commit()
    assert await stored_job(store, job) == job


async def test_an_exception_inside_the_block_stores_nothing_and_propagates(store):
    job = a_job()
    endpoint = an_endpoint(job=job)
    run = a_run(endpoint=endpoint)
    with pytest.raises(Boom):
        async with store.unit_of_work() as uow:
            await uow.jobs.add(job)
            await uow.endpoints.add(endpoint)
            await uow.runs.add(run)
            raise Boom
    assert not await job_exists(store, job)
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.endpoints.get(endpoint.id, tenant_id=None)
        with pytest.raises(NotFound):
            await uow.runs.get(run.id, tenant_id=None)


async def test_an_exception_after_updates_restores_the_stored_state(store):
    job = a_job()
    await given_stored(store, job)
    with pytest.raises(Boom):
        async with store.unit_of_work() as uow:
            await uow.jobs.update(evolve(job, name="Changed", status=JobStatus.PAUSED))
            raise Boom
    assert await stored_job(store, job) == job


async def test_an_exception_after_a_commit_keeps_what_was_committed(store):
    kept, lost = a_job(), a_job()
    with pytest.raises(Boom):
        async with store.unit_of_work() as uow:
            await uow.jobs.add(kept)
            await uow.commit()
            await uow.jobs.add(lost)
            raise Boom
    assert await job_exists(store, kept)
    assert not await job_exists(store, lost)


async def test_work_after_a_commit_is_rolled_back_unless_committed_again(store):
    first, second = a_job(), a_job()
    async with store.unit_of_work() as uow:
        await uow.jobs.add(first)
        await uow.commit()
        await uow.jobs.add(second)
    assert await job_exists(store, first)
    assert not await job_exists(store, second)


async def test_committing_twice_in_one_block_persists_both(store):
    first, second = a_job(), a_job()
    async with store.unit_of_work() as uow:
        await uow.jobs.add(first)
        await uow.commit()
        await uow.jobs.update(evolve(first, name="Renamed"))
        await uow.jobs.add(second)
        await uow.commit()
    assert (await stored_job(store, first)).name == "Renamed"
    assert await job_exists(store, second)


async def test_rollback_discards_uncommitted_work_and_the_block_can_go_on(store):
    discarded, kept = a_job(), a_job()
    async with store.unit_of_work() as uow:
        await uow.jobs.add(discarded)
        await uow.rollback()
        with pytest.raises(NotFound):
            await uow.jobs.get(discarded.id, tenant_id=None)
        await uow.jobs.add(kept)
        await uow.commit()
    assert not await job_exists(store, discarded)
    assert await job_exists(store, kept)


async def test_units_of_work_from_one_store_run_one_after_another(store):
    job = a_job(updated_at=T0)
    await given_stored(store, job)
    for n in range(3):
        async with store.unit_of_work() as uow:
            current = await uow.jobs.get(job.id, tenant_id=None)
            await uow.jobs.update(evolve(current, name=f"{current.name}+{n}"))
            await uow.commit()
    assert (await stored_job(store, job)).name == f"{job.name}+0+1+2"


async def test_a_read_only_unit_of_work_reads_what_is_committed(store):
    job = a_job()
    endpoint = an_endpoint(job=job)
    await given_stored(store, job, endpoint)
    async with store.unit_of_work(read_only=True) as uow:
        assert await uow.jobs.get(job.id, tenant_id=job.tenant_id) == job
        assert await uow.endpoints.get(endpoint.id, tenant_id=None) == endpoint


async def test_a_read_only_unit_of_work_refuses_to_commit(store):
    async with store.unit_of_work(read_only=True) as uow:
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()


async def test_a_write_in_a_read_only_unit_of_work_raises_and_stores_nothing(store):
    job = a_job()
    with pytest.raises(RuntimeError, match="read-only"):
        async with store.unit_of_work(read_only=True) as uow:
            await uow.jobs.add(job)
    assert not await job_exists(store, job)

