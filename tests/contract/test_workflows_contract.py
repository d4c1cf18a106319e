"""The WorkflowRepository contract (versions, listing, triggers), run against every storage adapter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from attrs import evolve

from domain.errors import AlreadyExists, Conflict, NotFound
from domain.queries import WorkflowQuery
from domain.pagination import PageRequest
from domain.schedules import CronSchedule
from domain.targets import PythonTarget
from domain.workflows import Step, Trigger, WorkflowStatus
from tests.builders import OTHER_TENANT, T0, TENANT
from tests.contract.support import assert_utc_aware, every_page, ids
from tests.workflows.builders import a_fully_loaded_workflow, a_workflow

MINUTE = timedelta(minutes=1)
LEASE = timedelta(seconds=30)


async def stored(store, *workflows):
    async with store.unit_of_work() as uow:
        for workflow in workflows:
            await uow.workflows.add(workflow)
        await uow.commit()


async def read(store, slug, tenant_id=TENANT, version=None):
    async with store.unit_of_work() as uow:
        return await uow.workflows.get(slug, tenant_id=tenant_id, version=version)


async def listed(store, tenant_id=TENANT, **query):
    async with store.unit_of_work() as uow:
        return await uow.workflows.list(tenant_id, WorkflowQuery(**query))


def a_revision(workflow, minutes=1, **fields):
    return workflow.revised(now=workflow.updated_at + minutes * MINUTE, **fields)


# -- round trips -------------------------------------------------------------------------


async def test_a_fully_loaded_workflow_reads_back_exactly_by_slug_and_by_id(store):
    workflow = a_fully_loaded_workflow()
    await stored(store, workflow)

    assert await read(store, workflow.slug) == workflow
    async with store.unit_of_work() as uow:
        assert await uow.workflows.get_by_id(workflow.id) == workflow
        assert await uow.workflows.get_by_id(workflow.id, version=1, tenant_id=TENANT) == workflow
    assert_utc_aware(workflow)


async def test_a_workflow_with_defaults_reads_back_exactly(store):
    workflow = a_workflow()
    await stored(store, workflow)
    assert await read(store, workflow.slug) == workflow


async def test_a_missing_or_another_tenants_workflow_is_not_found(store):
    workflow = a_workflow()
    await stored(store, workflow)
    async with store.unit_of_work() as uow:
        for call in (
            uow.workflows.get("missing", tenant_id=TENANT),
            uow.workflows.get(workflow.slug, tenant_id=OTHER_TENANT),
            uow.workflows.get(workflow.slug, tenant_id=TENANT, version=2),
            uow.workflows.get_by_id(workflow.id, tenant_id=OTHER_TENANT),
            uow.workflows.get_by_id(workflow.id, version=3),
        ):
            with pytest.raises(NotFound):
                await call


async def test_a_slug_taken_in_the_tenant_raises_already_exists_but_another_tenant_may_use_it(store):
    first = a_workflow(slug="billing")
    await stored(store, first)

    with pytest.raises(AlreadyExists):
        await stored(store, a_workflow(slug="billing"))
    await stored(store, a_workflow(slug="billing", tenant_id=OTHER_TENANT))

    assert (await read(store, "billing")).id == first.id


# -- versions --------------------------------------------------------------------------


async def test_a_revision_is_the_newest_version_and_the_older_one_stays_readable(store):
    first = a_workflow(name="First")
    second = a_revision(first, name="Second", steps=(Step(key="only", target=PythonTarget(handler="t.only")),))
    await stored(store, first)
    await stored(store, second)

    assert await read(store, first.slug) == second
    assert await read(store, first.slug, version=1) == first
    async with store.unit_of_work() as uow:
        assert (await uow.workflows.get_by_id(first.id)).version == 2
        assert await uow.workflows.get_by_id(first.id, version=1) == first
    [listed_one] = (await listed(store)).items
    assert listed_one == second


async def test_a_version_added_twice_raises_already_exists_and_a_skipped_one_not_found(store):
    first = a_workflow()
    second = a_revision(first)
    await stored(store, first, second)

    with pytest.raises(AlreadyExists):
        await stored(store, a_revision(first, minutes=2, name="Concurrent"))
    with pytest.raises(NotFound):
        await stored(store, a_revision(a_revision(second), minutes=3))
    assert await read(store, first.slug) == second


async def test_archiving_shows_in_every_version_and_keeps_older_versions_times(store):
    first = a_workflow()
    second = a_revision(first)
    await stored(store, first, second)
    archived = second.archive(now=second.updated_at + MINUTE)

    async with store.unit_of_work() as uow:
        await uow.workflows.update(archived)
        await uow.commit()

    assert await read(store, first.slug) == archived
    older = await read(store, first.slug, version=1)
    assert (older.status, older.updated_at) == (WorkflowStatus.ARCHIVED, first.updated_at)


async def test_updating_an_older_version_raises_conflict_and_a_missing_one_not_found(store):
    first = a_workflow()
    await stored(store, first, a_revision(first))
    async with store.unit_of_work() as uow:
        with pytest.raises(Conflict):
            await uow.workflows.update(first.archive(now=T0 + MINUTE))
        with pytest.raises(NotFound):
            await uow.workflows.update(a_workflow().archive(now=T0))


# -- listing ---------------------------------------------------------------------------


async def test_the_list_holds_the_tenants_workflows_and_hides_archived_ones_unless_asked(store):
    active, gone = a_workflow(), a_workflow()
    await stored(store, active, gone, a_workflow(tenant_id=OTHER_TENANT))
    async with store.unit_of_work() as uow:
        await uow.workflows.update(gone.archive(now=T0 + MINUTE))
        await uow.commit()

    assert ids((await listed(store)).items) == [active.id]
    assert ids((await listed(store, status=WorkflowStatus.ARCHIVED)).items) == [gone.id]
    assert ids((await listed(store, status=WorkflowStatus.ACTIVE)).items) == [active.id]


@pytest.mark.parametrize(("count", "limit"), [(7, 3), (4, 4), (5, 1)])
async def test_pages_run_newest_first_without_repeating_or_losing_a_workflow(store, count, limit):
    workflows = [a_workflow(now=T0 + (i // 2) * MINUTE) for i in range(count)]  # pairs share a timestamp
    await stored(store, *workflows)

    async def fetch(page: PageRequest):
        return await listed(store, page=page)

    pages = await every_page(fetch, limit=limit)
    seen = [w.id for page in pages for w in page.items]
    expected = sorted(workflows, key=lambda w: (w.created_at, w.id), reverse=True)
    assert seen == [w.id for w in expected]


# -- event triggers --------------------------------------------------------------------------


async def test_workflows_are_found_by_an_event_topic_exactly_or_by_pattern(store):
    exact = a_workflow(triggers=(Trigger.on_event("usage.imported"),))
    pattern = a_workflow(triggers=(Trigger.on_event("usage.*"), Trigger.manual()))
    other = a_workflow(triggers=(Trigger.on_event("invoices.imported"),))
    cron_only = a_workflow(triggers=(Trigger.on_cron("0 2 * * *"),))
    theirs = a_workflow(tenant_id=OTHER_TENANT, triggers=(Trigger.on_event("usage.imported"),))
    await stored(store, exact, pattern, other, cron_only, theirs)

    async with store.unit_of_work() as uow:
        found = await uow.workflows.with_event_trigger(TENANT, "usage.imported")
        nothing = await uow.workflows.with_event_trigger(TENANT, "usage")

    assert sorted(ids(found)) == sorted([exact.id, pattern.id])
    assert nothing == []


async def test_archived_workflows_and_dropped_triggers_are_not_found_by_topic(store):
    archived = a_workflow(triggers=(Trigger.on_event("t.x"),))
    revised = a_workflow(triggers=(Trigger.on_event("t.x"),))
    await stored(store, archived, revised, a_revision(revised, triggers=(Trigger.on_event("t.y"),)))
    async with store.unit_of_work() as uow:
        await uow.workflows.update(archived.archive(now=T0 + MINUTE))
        await uow.commit()

    async with store.unit_of_work() as uow:
        assert await uow.workflows.with_event_trigger(TENANT, "t.x") == []
        [found] = await uow.workflows.with_event_trigger(TENANT, "t.y")
    assert (found.id, found.version) == (revised.id, 2)


# -- cron triggers ----------------------------------------------------------------------------


def hourly(**overrides):
    return a_workflow(triggers=(Trigger.on_cron("0 * * * *"),), **overrides)


async def claim(store, now, *, owner="scheduler-a", limit=10, commit=True):
    async with store.unit_of_work() as uow:
        due = await uow.workflows.due_cron(now, limit, lease=LEASE, owner=owner)
        if commit:
            await uow.commit()
    return due


async def test_a_cron_trigger_first_fires_at_its_slot_after_the_version_was_made(store):
    workflow = hourly()  # made at T0 = 12:00
    await stored(store, workflow)
    async with store.unit_of_work() as uow:
        assert await uow.workflows.next_cron_at() == T0 + 60 * MINUTE

    assert await claim(store, T0 + 59 * MINUTE) == []
    [trigger] = await claim(store, T0 + 60 * MINUTE)

    assert (trigger.workflow_id, trigger.tenant_id, trigger.cron) == (workflow.id, TENANT, CronSchedule(cron="0 * * * *"))
    assert trigger.next_fire_at == T0 + 60 * MINUTE
    assert (trigger.claimed_by, trigger.lease_expires_at) == ("scheduler-a", T0 + 60 * MINUTE + LEASE)
    assert_utc_aware(trigger)


async def test_a_claimed_trigger_is_not_claimed_again_before_its_lease_ends(store):
    await stored(store, hourly())
    at = T0 + 61 * MINUTE
    assert len(await claim(store, at)) == 1

    assert await claim(store, at + LEASE - timedelta(seconds=1), owner="scheduler-b") == []
    [again] = await claim(store, at + LEASE, owner="scheduler-b")
    assert again.claimed_by == "scheduler-b"


async def test_the_next_slot_of_a_claimed_trigger_is_when_its_lease_ends(store):
    await stored(store, hourly(), a_workflow(triggers=(Trigger.on_cron("0 15 * * *"),)))
    at = T0 + 61 * MINUTE
    [claimed] = await claim(store, at, limit=1)
    async with store.unit_of_work() as uow:
        assert await uow.workflows.next_cron_at() == at + LEASE
        assert await uow.workflows.fire_cron(claimed, next_fire_at=T0 + 120 * MINUTE)
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.workflows.next_cron_at() == T0 + 120 * MINUTE


async def test_a_claim_that_is_not_committed_leaves_the_trigger_unleased(store):
    await stored(store, hourly())
    at = T0 + 61 * MINUTE
    await claim(store, at, commit=False)
    assert len(await claim(store, at, owner="scheduler-b")) == 1


async def test_a_claim_returns_at_most_limit_earliest_first(store):
    early = a_workflow(triggers=(Trigger.on_cron("30 12 * * *"),))
    late = a_workflow(triggers=(Trigger.on_cron("45 12 * * *"),))
    await stored(store, late, early)

    [first] = await claim(store, T0 + 50 * MINUTE, limit=1)
    [second] = await claim(store, T0 + 50 * MINUTE)

    assert (first.workflow_id, second.workflow_id) == (early.id, late.id)


async def test_firing_moves_the_slot_once_and_ends_the_lease(store):
    await stored(store, hourly())
    [trigger] = await claim(store, T0 + 60 * MINUTE)
    following = T0 + 120 * MINUTE

    async with store.unit_of_work() as uow:
        first = await uow.workflows.fire_cron(trigger, next_fire_at=following)
        second = await uow.workflows.fire_cron(trigger, next_fire_at=following)
        await uow.commit()

    assert (first, second) == (True, False)
    assert await claim(store, T0 + 119 * MINUTE) == []
    [moved] = await claim(store, following)
    assert moved.next_fire_at == following
    assert moved.id == trigger.id


async def test_a_revision_keeps_a_cron_triggers_slot_and_replaces_a_changed_one(store):
    kept = hourly()
    changed = hourly()
    await stored(store, kept, changed)
    [one, two] = sorted(await claim(store, T0 + 60 * MINUTE), key=lambda t: t.workflow_id == changed.id)
    async with store.unit_of_work() as uow:
        assert await uow.workflows.fire_cron(one, next_fire_at=T0 + 120 * MINUTE)
        assert await uow.workflows.fire_cron(two, next_fire_at=T0 + 120 * MINUTE)
        await uow.commit()

    # revised at 12:30: one keeps its trigger (and its next slot, 14:00), the other moves to daily
    await stored(
        store,
        a_revision(kept, minutes=30, name="Renamed"),
        a_revision(changed, minutes=30, triggers=(Trigger.on_cron("0 3 * * *", "Europe/Berlin"),)),
    )

    due = {t.workflow_id: t for t in await claim(store, T0 + timedelta(days=1))}
    assert due[kept.id].next_fire_at == T0 + 120 * MINUTE
    assert due[changed.id].next_fire_at == T0.replace(hour=2) + timedelta(days=1)  # 03:00 Berlin in January
    assert due[changed.id].cron == CronSchedule(cron="0 3 * * *", timezone="Europe/Berlin")


async def test_an_archived_workflows_cron_trigger_is_never_due(store):
    workflow = hourly()
    await stored(store, workflow, hourly(tenant_id=OTHER_TENANT))
    async with store.unit_of_work() as uow:
        await uow.workflows.update(workflow.archive(now=T0 + MINUTE))
        await uow.commit()

    due = await claim(store, T0 + timedelta(days=1))

    assert [t.tenant_id for t in due] == [OTHER_TENANT]


async def test_without_cron_triggers_there_is_no_next_slot(store):
    await stored(store, a_workflow(triggers=(Trigger.manual(), Trigger.on_event("x"))))
    async with store.unit_of_work() as uow:
        assert await uow.workflows.next_cron_at() is None
        assert await uow.workflows.due_cron(T0 + timedelta(days=9), 10, lease=LEASE, owner="s") == []


async def test_a_workflow_version_keeps_its_own_triggers(store):
    workflow = hourly()
    revised = a_revision(workflow, triggers=())
    await stored(store, workflow, revised)

    assert (await read(store, workflow.slug, version=1)).triggers == workflow.triggers
    assert (await read(store, workflow.slug)).triggers == ()
    assert await claim(store, T0 + timedelta(days=1)) == []
    assert evolve(revised, triggers=workflow.triggers, version=1, updated_at=workflow.updated_at) == workflow
