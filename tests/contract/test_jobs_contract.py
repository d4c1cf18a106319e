"""The JobRepository contract, run against every storage adapter (``store`` fixture)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from attrs import evolve

from domain.errors import AlreadyExists, NotFound
from domain.ids import JobId, new_id
from domain.jobs import JobStatus
from domain.pagination import PageRequest
from domain.queries import JobQuery
from tests.builders import OTHER_TENANT, T0, TENANT, a_fully_loaded_job, a_job
from tests.contract.support import assert_utc_aware, every_page, given_stored, ids, newest_first

SECOND = timedelta(seconds=1)


async def read_job(store, job_id, tenant_id=TENANT):
    async with store.unit_of_work() as uow:
        return await uow.jobs.get(job_id, tenant_id=tenant_id)


async def list_jobs(store, tenant_id=TENANT, **query):
    async with store.unit_of_work() as uow:
        return await uow.jobs.list(tenant_id, JobQuery(**query))


async def test_a_stored_job_reads_back_with_every_field_exactly(store):
    job = a_fully_loaded_job()
    await given_stored(store, job)

    found = await read_job(store, job.id)

    assert found == job
    assert_utc_aware(found)


async def test_a_job_with_default_fields_reads_back_exactly(store):
    job = a_job(description="", labels={}, annotations={}, provenance=None)
    await given_stored(store, job)
    assert await read_job(store, job.id) == job


async def test_a_job_is_found_by_its_slug_within_its_tenant(store):
    job = a_job(slug="billing")
    await given_stored(store, job)
    async with store.unit_of_work() as uow:
        assert await uow.jobs.get_by_slug("billing", tenant_id=TENANT) == job
        with pytest.raises(NotFound):
            await uow.jobs.get_by_slug("billing", tenant_id=OTHER_TENANT)
        with pytest.raises(NotFound):
            await uow.jobs.get_by_slug("missing", tenant_id=TENANT)


async def test_an_updated_job_reads_back_with_every_change(store):
    job = a_fully_loaded_job()
    await given_stored(store, job)
    changed = evolve(
        job,
        slug="renamed",
        name="Renamed",
        description="",
        status=JobStatus.ARCHIVED,
        labels={"team": "ops"},
        annotations={},
        provenance=None,
        updated_at=job.updated_at + timedelta(days=1, microseconds=5),
    )

    async with store.unit_of_work() as uow:
        await uow.jobs.update(changed)
        await uow.commit()

    found = await read_job(store, job.id)
    assert found == changed
    assert_utc_aware(found)


async def test_getting_a_missing_job_raises_not_found(store):
    await given_stored(store, a_job())
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.jobs.get(JobId(new_id()), tenant_id=TENANT)
        with pytest.raises(NotFound):
            await uow.jobs.get(JobId(new_id()), tenant_id=None)


async def test_another_tenants_job_is_not_found_but_the_system_view_sees_it(store):
    job = a_job(tenant_id=OTHER_TENANT)
    await given_stored(store, job)
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.jobs.get(job.id, tenant_id=TENANT)
        assert await uow.jobs.get(job.id, tenant_id=None) == job
        assert await uow.jobs.get(job.id, tenant_id=OTHER_TENANT) == job


async def test_a_slug_taken_in_the_tenant_raises_already_exists(store):
    await given_stored(store, a_job(slug="billing"))
    async with store.unit_of_work() as uow:
        with pytest.raises(AlreadyExists):
            await uow.jobs.add(a_job(slug="billing"))
    assert [j.slug for j in (await list_jobs(store)).items] == ["billing"]


async def test_the_same_slug_in_another_tenant_is_allowed(store):
    ours, theirs = a_job(slug="billing"), a_job(slug="billing", tenant_id=OTHER_TENANT)
    await given_stored(store, ours, theirs)
    assert await read_job(store, theirs.id, OTHER_TENANT) == theirs
    assert await read_job(store, ours.id) == ours


async def test_updating_a_job_to_a_taken_slug_raises_already_exists(store):
    first, second = a_job(slug="first"), a_job(slug="second")
    await given_stored(store, first, second)
    async with store.unit_of_work() as uow:
        with pytest.raises(AlreadyExists):
            await uow.jobs.update(evolve(second, slug="first"))
    assert (await read_job(store, second.id)).slug == "second"


async def test_updating_a_missing_job_raises_not_found(store):
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.jobs.update(a_job())


async def test_the_list_holds_only_the_tenants_jobs_and_hides_archived_ones_by_default(store):
    active, paused = a_job(), a_job(status=JobStatus.PAUSED)
    archived, theirs = a_job(status=JobStatus.ARCHIVED), a_job(tenant_id=OTHER_TENANT)
    await given_stored(store, active, paused, archived, theirs)

    assert set(ids((await list_jobs(store)).items)) == {active.id, paused.id}
    assert ids((await list_jobs(store, OTHER_TENANT)).items) == [theirs.id]


@pytest.mark.parametrize("status", list(JobStatus))
async def test_the_list_filters_by_status(store, status):
    jobs = {s: a_job(status=s) for s in JobStatus}
    await given_stored(store, *jobs.values())
    assert ids((await list_jobs(store, status=status)).items) == [jobs[status].id]


async def test_the_list_filters_by_one_label(store):
    pay = a_job(labels={"team": "pay", "tier": "gold"})
    ops = a_job(labels={"team": "ops"})
    bare = a_job()
    await given_stored(store, pay, ops, bare)
    assert ids((await list_jobs(store, label=("team", "pay"))).items) == [pay.id]
    assert ids((await list_jobs(store, label=("tier", "gold"))).items) == [pay.id]
    assert (await list_jobs(store, label=("team", "nobody"))).items == []


async def test_the_list_searches_names_and_slugs_case_insensitively(store):
    invoices = a_job(slug="sync-invoices", name="Ledger")
    reports = a_job(slug="reports", name="Nightly INVOICE digest")
    other = a_job(slug="cleanup", name="Cleanup")
    await given_stored(store, invoices, reports, other)
    assert set(ids((await list_jobs(store, search="invoice")).items)) == {invoices.id, reports.id}
    assert ids((await list_jobs(store, search="LEDG")).items) == [invoices.id]
    assert (await list_jobs(store, search="absent")).items == []


async def test_filters_combine(store):
    match = a_job(name="Billing sync", labels={"team": "pay"}, status=JobStatus.PAUSED)
    wrong_status = a_job(name="Billing sync 2", labels={"team": "pay"})
    wrong_label = a_job(name="Billing sync 3", labels={"team": "ops"}, status=JobStatus.PAUSED)
    await given_stored(store, match, wrong_status, wrong_label)
    found = await list_jobs(store, status=JobStatus.PAUSED, label=("team", "pay"), search="billing")
    assert ids(found.items) == [match.id]


@pytest.mark.parametrize(("count", "limit"), [(7, 3), (6, 3), (1, 5), (4, 1)])
async def test_pages_run_newest_first_without_repeating_or_losing_a_job_even_on_tied_timestamps(store, count, limit):
    # Given jobs whose creation times tie in pairs
    jobs = [a_job(created_at=T0 + (n // 2) * SECOND, updated_at=T0 + (n // 2) * SECOND) for n in range(count)]
    await given_stored(store, *jobs)

    async def fetch(page: PageRequest):
        return await list_jobs(store, page=page)

    pages = await every_page(fetch, limit=limit)

    assert [len(p.items) for p in pages[:-1]] == [limit] * (len(pages) - 1)
    assert pages[-1].next_cursor is None
    assert 1 <= len(pages[-1].items) <= limit
    assert [job.id for p in pages for job in p.items] == ids(newest_first(jobs, lambda j: j.created_at))


async def test_an_empty_list_has_no_next_page(store):
    page = await list_jobs(store)
    assert (page.items, page.next_cursor) == ([], None)
