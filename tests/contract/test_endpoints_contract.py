"""The EndpointRepository contract, run against every storage adapter (``store`` fixture)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from attrs import evolve

from domain.endpoints import EndpointStatus
from domain.errors import AlreadyExists, NotFound
from domain.hints import IntervalHint, OneShotHint
from domain.ids import EndpointId, JobId, new_id
from domain.jobs import JobStatus
from domain.pagination import PageRequest
from domain.queries import EndpointQuery
from domain.retry import RetryPolicy
from domain.runs import RunSource
from domain.schedules import CronSchedule, IntervalSchedule
from domain.targets import PythonTarget
from tests.builders import (
    OTHER_TENANT,
    T0,
    TENANT,
    a_fully_loaded_endpoint,
    a_fully_loaded_job,
    a_job,
    a_python_endpoint,
    an_endpoint,
)
from tests.contract.support import assert_utc_aware, every_page, given_stored, ids, newest_first

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
LEASE = timedelta(seconds=30)
NOW = T0 + timedelta(hours=1)


async def read_endpoint(store, endpoint_id, tenant_id=TENANT):
    async with store.unit_of_work() as uow:
        return await uow.endpoints.get(endpoint_id, tenant_id=tenant_id)


async def list_endpoints(store, tenant_id=TENANT, **query):
    async with store.unit_of_work() as uow:
        return await uow.endpoints.list(tenant_id, EndpointQuery(**query))


async def claim(store, now=NOW, limit=10, lease=LEASE, owner="scheduler-1"):
    async with store.unit_of_work() as uow:
        claimed = await uow.endpoints.claim_due(now, limit, lease, owner)
        await uow.commit()
    return list(claimed)


# -- round trips ---------------------------------------------------------------------------


async def test_a_stored_endpoint_reads_back_with_every_field_exactly(store):
    job = a_fully_loaded_job()
    endpoint = a_fully_loaded_endpoint(job=job)
    await given_stored(store, job, endpoint)

    found = await read_endpoint(store, endpoint.id)

    assert found == endpoint
    assert_utc_aware(found)


async def test_an_endpoint_without_a_job_and_with_defaults_reads_back_exactly(store):
    endpoint = a_python_endpoint(next_run_at=None, next_run_source=None)
    await given_stored(store, endpoint)
    assert await read_endpoint(store, endpoint.id) == endpoint


async def test_an_updated_endpoint_reads_back_with_every_change(store):
    job, other_job = a_fully_loaded_job(), a_job()
    endpoint = a_fully_loaded_endpoint(job=job)
    await given_stored(store, job, other_job, endpoint)
    changed = evolve(
        endpoint,
        job_id=other_job.id,
        name="renamed-endpoint",
        description="",
        target=PythonTarget(handler="reports.nightly", params={"depth": 2, "nested": {"ok": [True, None]}}),
        schedule=IntervalSchedule(interval=timedelta(seconds=90.25)),
        min_interval=None,
        max_interval=timedelta(days=2),
        retry=RetryPolicy(),
        timeout=timedelta(hours=24),
        priority=0,
        allow_concurrent=False,
        auto_pause_after=None,
        interval_hint=IntervalHint(interval=timedelta(seconds=45), expires_at=T0 + timedelta(days=3)),
        oneshot_hint=None,
        status=EndpointStatus.PAUSED,
        paused_until=None,
        failure_count=0,
        last_run_at=T0,
        next_run_at=None,
        next_run_source=None,
        claimed_by=None,
        lease_expires_at=None,
        updated_at=endpoint.updated_at + timedelta(hours=5, microseconds=3),
    )

    async with store.unit_of_work() as uow:
        await uow.endpoints.update(changed)
        await uow.commit()

    assert await read_endpoint(store, endpoint.id) == changed


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/St_Johns", "Asia/Kathmandu", "UTC"])
async def test_a_cron_schedule_keeps_its_time_zone(store, zone):
    endpoint = an_endpoint(schedule=CronSchedule(cron="*/15 2-3 * * 1,3,5", timezone=zone))
    await given_stored(store, endpoint)
    assert (await read_endpoint(store, endpoint.id)).schedule == CronSchedule(cron="*/15 2-3 * * 1,3,5", timezone=zone)


# -- lookups, tenants and uniqueness ---------------------------------------------------------------


async def test_getting_a_missing_endpoint_raises_not_found(store):
    await given_stored(store, an_endpoint())
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.endpoints.get(EndpointId(new_id()), tenant_id=TENANT)
        with pytest.raises(NotFound):
            await uow.endpoints.get(EndpointId(new_id()), tenant_id=None)


async def test_another_tenants_endpoint_is_not_found_but_the_system_view_sees_it(store):
    endpoint = an_endpoint(tenant_id=OTHER_TENANT)
    await given_stored(store, endpoint)
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.endpoints.get(endpoint.id, tenant_id=TENANT)
        assert await uow.endpoints.get(endpoint.id, tenant_id=None) == endpoint


async def test_a_name_taken_in_the_tenant_raises_already_exists(store):
    await given_stored(store, an_endpoint(name="sync"))
    async with store.unit_of_work() as uow:
        with pytest.raises(AlreadyExists):
            await uow.endpoints.add(an_endpoint(name="sync"))
    assert [e.name for e in (await list_endpoints(store)).items] == ["sync"]


async def test_the_same_name_in_another_tenant_is_allowed(store):
    ours, theirs = an_endpoint(name="sync"), an_endpoint(name="sync", tenant_id=OTHER_TENANT)
    await given_stored(store, ours, theirs)
    assert await read_endpoint(store, theirs.id, OTHER_TENANT) == theirs


async def test_renaming_an_endpoint_to_a_taken_name_raises_already_exists(store):
    first, second = an_endpoint(name="first"), an_endpoint(name="second")
    await given_stored(store, first, second)
    async with store.unit_of_work() as uow:
        with pytest.raises(AlreadyExists):
            await uow.endpoints.update(evolve(second, name="first"))
    assert (await read_endpoint(store, second.id)).name == "second"


async def test_updating_a_missing_endpoint_raises_not_found(store):
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.endpoints.update(an_endpoint())


async def test_an_endpoint_in_a_job_that_does_not_exist_is_refused_with_not_found(store):
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.endpoints.add(an_endpoint(job_id=JobId(new_id())))
    assert (await list_endpoints(store)).items == []


# -- lists ---------------------------------------------------------------------------------------


async def test_the_list_holds_only_the_tenants_endpoints_and_hides_archived_ones_by_default(store):
    active, paused = an_endpoint(), an_endpoint(status=EndpointStatus.PAUSED)
    archived, theirs = an_endpoint(status=EndpointStatus.ARCHIVED), an_endpoint(tenant_id=OTHER_TENANT)
    await given_stored(store, active, paused, archived, theirs)
    assert set(ids((await list_endpoints(store)).items)) == {active.id, paused.id}
    assert ids((await list_endpoints(store, OTHER_TENANT)).items) == [theirs.id]


@pytest.mark.parametrize("status", list(EndpointStatus))
async def test_the_list_filters_by_status(store, status):
    endpoints = {s: an_endpoint(status=s) for s in EndpointStatus}
    await given_stored(store, *endpoints.values())
    assert ids((await list_endpoints(store, status=status)).items) == [endpoints[status].id]


async def test_the_list_filters_by_job(store):
    billing, reports = a_job(), a_job()
    in_billing = [an_endpoint(job=billing), an_endpoint(job=billing, status=EndpointStatus.ARCHIVED)]
    in_reports, loose = an_endpoint(job=reports), an_endpoint()
    await given_stored(store, billing, reports, *in_billing, in_reports, loose)
    assert ids((await list_endpoints(store, job_id=billing.id)).items) == [in_billing[0].id]
    assert ids((await list_endpoints(store, job_id=billing.id, status=EndpointStatus.ARCHIVED)).items) == [in_billing[1].id]
    assert ids((await list_endpoints(store, job_id=reports.id)).items) == [in_reports.id]


@pytest.mark.parametrize(("count", "limit"), [(7, 3), (6, 2), (2, 5)])
async def test_pages_run_newest_first_without_repeating_or_losing_an_endpoint_even_on_tied_timestamps(store, count, limit):
    endpoints = [an_endpoint(created_at=T0 + (n // 3) * SECOND) for n in range(count)]
    await given_stored(store, *endpoints)

    async def fetch(page: PageRequest):
        return await list_endpoints(store, page=page)

    pages = await every_page(fetch, limit=limit)

    assert pages[-1].next_cursor is None
    assert all(len(p.items) == limit for p in pages[:-1])
    assert [e.id for p in pages for e in p.items] == ids(newest_first(endpoints, lambda e: e.created_at))


# -- claiming due endpoints ------------------------------------------------------------------------


async def test_claim_due_returns_only_due_active_unpaused_unleased_endpoints_of_active_jobs(store):
    # Given endpoints in every state around NOW
    active_job, paused_job, archived_job = a_job(), a_job(status=JobStatus.PAUSED), a_job(status=JobStatus.ARCHIVED)
    claimable = {
        "due": an_endpoint(next_run_at=NOW - MINUTE),
        "due exactly now": an_endpoint(next_run_at=NOW),
        "in an active job": an_endpoint(job=active_job, next_run_at=NOW - SECOND),
        "lease ended": an_endpoint(next_run_at=NOW - MINUTE, claimed_by="dead", lease_expires_at=NOW - SECOND),
        "pause ended": an_endpoint(next_run_at=NOW - MINUTE, paused_until=NOW - SECOND),
        "of another tenant": an_endpoint(tenant_id=OTHER_TENANT, next_run_at=NOW - MINUTE),
    }
    not_claimable = {
        "not yet due": an_endpoint(next_run_at=NOW + SECOND),
        "never planned": an_endpoint(next_run_at=None, next_run_source=None),
        "paused": an_endpoint(status=EndpointStatus.PAUSED, next_run_at=NOW - MINUTE),
        "archived": an_endpoint(status=EndpointStatus.ARCHIVED, next_run_at=NOW - MINUTE),
        "paused until later": an_endpoint(next_run_at=NOW - MINUTE, paused_until=NOW + MINUTE),
        "leased": an_endpoint(next_run_at=NOW - MINUTE, claimed_by="other", lease_expires_at=NOW + SECOND),
        "in a paused job": an_endpoint(job=paused_job, next_run_at=NOW - MINUTE),
        "in an archived job": an_endpoint(job=archived_job, next_run_at=NOW - MINUTE),
    }
    await given_stored(store, active_job, paused_job, archived_job, *claimable.values(), *not_claimable.values())

    # When a scheduler claims
    claimed = await claim(store, limit=100)

    # Then it gets exactly the claimable ones
    names = {e.id: label for label, e in {**claimable, **not_claimable}.items()}
    assert sorted(names[e.id] for e in claimed) == sorted(claimable)


async def test_claim_due_leases_what_it_returns_and_stores_the_lease(store):
    endpoint = an_endpoint(next_run_at=NOW - MINUTE)
    await given_stored(store, endpoint)

    [claimed] = await claim(store, owner="scheduler-7")

    assert (claimed.id, claimed.claimed_by, claimed.lease_expires_at) == (endpoint.id, "scheduler-7", NOW + LEASE)
    assert claimed == evolve(endpoint, claimed_by="scheduler-7", lease_expires_at=NOW + LEASE)
    stored = await read_endpoint(store, endpoint.id)
    assert (stored.claimed_by, stored.lease_expires_at) == ("scheduler-7", NOW + LEASE)


async def test_claim_due_returns_at_most_limit_highest_priority_first_then_earliest(store):
    endpoints = {
        "p9 late": an_endpoint(priority=9, next_run_at=NOW - SECOND),
        "p9 early": an_endpoint(priority=9, next_run_at=NOW - MINUTE),
        "p5 earliest": an_endpoint(priority=5, next_run_at=NOW - 10 * MINUTE),
        "p5 later": an_endpoint(priority=5, next_run_at=NOW - 5 * MINUTE),
        "p0 earliest of all": an_endpoint(priority=0, next_run_at=NOW - 60 * MINUTE),
    }
    await given_stored(store, *endpoints.values())
    names = {e.id: label for label, e in endpoints.items()}

    first = await claim(store, limit=3)
    rest = await claim(store, limit=3, owner="scheduler-2")

    assert [names[e.id] for e in first] == ["p9 early", "p9 late", "p5 earliest"]
    assert [names[e.id] for e in rest] == ["p5 later", "p0 earliest of all"]


async def test_a_claimed_endpoint_is_not_claimed_again_before_its_lease_ends(store):
    endpoint = an_endpoint(next_run_at=NOW - MINUTE)
    await given_stored(store, endpoint)

    assert ids(await claim(store, owner="scheduler-1")) == [endpoint.id]
    assert await claim(store, now=NOW, owner="scheduler-2") == []
    assert await claim(store, now=NOW + LEASE - SECOND, owner="scheduler-2") == []
    assert (await read_endpoint(store, endpoint.id)).claimed_by == "scheduler-1"


async def test_an_endpoint_is_claimable_again_once_its_lease_has_ended(store):
    endpoint = an_endpoint(next_run_at=NOW - MINUTE)
    await given_stored(store, endpoint)
    await claim(store, owner="scheduler-1")

    again = await claim(store, now=NOW + LEASE + SECOND, owner="scheduler-2")

    assert ids(again) == [endpoint.id]
    assert (again[0].claimed_by, again[0].lease_expires_at) == ("scheduler-2", NOW + 2 * LEASE + SECOND)


async def test_a_claim_with_nothing_due_returns_nothing_and_changes_nothing(store):
    endpoint = an_endpoint(next_run_at=NOW + MINUTE)
    await given_stored(store, endpoint)
    assert await claim(store) == []
    assert await read_endpoint(store, endpoint.id) == endpoint


async def test_a_claim_that_is_not_committed_leaves_the_endpoint_unleased(store):
    endpoint = an_endpoint(next_run_at=NOW - MINUTE)
    await given_stored(store, endpoint)
    async with store.unit_of_work() as uow:
        assert ids(await uow.endpoints.claim_due(NOW, 10, LEASE, "scheduler-1")) == [endpoint.id]
    assert await read_endpoint(store, endpoint.id) == endpoint
    assert ids(await claim(store, owner="scheduler-2")) == [endpoint.id]


async def test_a_fired_endpoint_releases_its_lease_and_is_not_due_until_its_next_run(store):
    endpoint = an_endpoint(next_run_at=NOW - MINUTE)
    await given_stored(store, endpoint)
    [claimed] = await claim(store)
    async with store.unit_of_work() as uow:
        await uow.endpoints.update(claimed.fired(now=NOW))
        await uow.commit()

    stored = await read_endpoint(store, endpoint.id)
    assert (stored.claimed_by, stored.lease_expires_at, stored.last_run_at) == (None, None, NOW - MINUTE)
    assert (stored.next_run_at, stored.next_run_source) == (NOW + MINUTE, RunSource.BASELINE_INTERVAL)
    assert await claim(store, now=NOW + SECOND) == []
    assert ids(await claim(store, now=NOW + MINUTE)) == [endpoint.id]


async def test_storing_fired_endpoints_stores_what_firing_changed_and_nothing_else(store):
    # Given two claimed endpoints, one with a one-shot hint its run spends and an interval hint
    hinted = an_endpoint(
        next_run_at=NOW - MINUTE,
        interval_hint=IntervalHint(interval=timedelta(seconds=45), expires_at=NOW + timedelta(days=1), reason="busy"),
        oneshot_hint=OneShotHint(run_at=NOW - MINUTE, expires_at=NOW + MINUTE, reason="now"),
    )
    plain = an_endpoint(next_run_at=NOW - SECOND)
    await given_stored(store, hinted, plain)
    async with store.unit_of_work() as uow:
        claimed = await uow.endpoints.claim_due(NOW, 10, LEASE, "scheduler-1")
        fired = [endpoint.fired(now=NOW) for endpoint in claimed]
        # When their fired state is stored
        await uow.endpoints.store_fired(fired)
        await uow.commit()

    # Then each reads back exactly as fired: lease released, slot spent, next run planned
    for endpoint in fired:
        stored = await read_endpoint(store, endpoint.id)
        assert stored == endpoint
        assert (stored.claimed_by, stored.lease_expires_at, stored.last_run_at) == (None, None, endpoint.last_run_at)
    stored_hinted = await read_endpoint(store, hinted.id)
    assert stored_hinted.oneshot_hint is None and stored_hinted.interval_hint == hinted.interval_hint
    assert stored_hinted.next_run_at > NOW


async def test_storing_a_fired_endpoint_that_is_not_stored_raises_not_found_and_stores_nothing(store):
    ghost = an_endpoint(next_run_at=NOW - MINUTE)
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.endpoints.store_fired([ghost.fired(now=NOW)])
    with pytest.raises(NotFound):
        await read_endpoint(store, ghost.id)
