"""What starts workflow runs besides a person: cron slots and published events, on every store."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from domain.errors import ValidationFailed
from domain.queries import EventQuery
from domain.runs import slot_key
from domain.workflows import TriggerKind
from tests.builders import OTHER_TENANT, T0, TENANT
from tests.workflows.harness import Flow, step

MINUTE = timedelta(minutes=1)


async def runs_of(flow: Flow, workflow) -> list:
    return list((await flow.workflows.runs(TENANT, workflow.slug)).items)


# -- cron ---------------------------------------------------------------------------------


async def test_a_cron_trigger_starts_one_run_per_slot(flow: Flow):
    workflow = await flow.define(step("a"), triggers=[{"kind": "cron", "cron": "*/5 * * * *"}])  # made at 12:00

    quiet = await flow.triggers.tick(T0 + 4 * MINUTE)
    fired = await flow.triggers.tick(T0 + 5 * MINUTE)
    again = await flow.triggers_for("scheduler-b").tick(T0 + 5 * MINUTE)

    assert (quiet.fired, fired.fired, again.fired) == (0, 1, 0)
    assert (quiet.next_at, fired.next_at) == (T0 + 5 * MINUTE, T0 + 10 * MINUTE)
    [run] = await runs_of(flow, workflow)
    assert (run.trigger, run.input) == (TriggerKind.CRON, {"scheduled_at": slot_key(T0 + 5 * MINUTE)})
    assert len(flow.dispatcher.take()) == 1  # its first step, dispatched


async def test_a_slot_missed_while_no_scheduler_ran_fires_once_late_and_the_next_on_time(flow: Flow):
    workflow = await flow.define(step("a"), triggers=[{"kind": "cron", "cron": "*/5 * * * *"}])

    late = await flow.triggers.tick(T0 + 23 * MINUTE)  # 12:05 … 12:20 were missed
    on_time = await flow.triggers.tick(T0 + 25 * MINUTE)

    assert (late.fired, late.next_at, on_time.fired) == (1, T0 + 25 * MINUTE, 1)
    runs = await runs_of(flow, workflow)
    assert sorted(r.input["scheduled_at"] for r in runs) == [slot_key(T0 + 5 * MINUTE), slot_key(T0 + 25 * MINUTE)]


async def test_two_schedulers_ticking_at_once_fire_a_slot_once(flow: Flow):
    workflows = [await flow.define(step("a"), triggers=[{"kind": "cron", "cron": "0 * * * *"}]) for _ in range(3)]

    ticks = await asyncio.gather(*(flow.triggers_for(f"scheduler-{i}").tick(T0 + 60 * MINUTE) for i in range(3)))

    assert sum(t.fired for t in ticks) == 3
    assert [len(await runs_of(flow, w)) for w in workflows] == [1, 1, 1]


async def test_a_claim_left_by_a_dead_scheduler_fires_after_its_lease(flow: Flow):
    workflow = await flow.define(step("a"), triggers=[{"kind": "cron", "cron": "0 * * * *"}])
    async with flow.store.unit_of_work() as uow:  # a scheduler claimed the slot, then died
        await uow.workflows.due_cron(T0 + 60 * MINUTE, 10, lease=timedelta(seconds=60), owner="dead")
        await uow.commit()

    during = await flow.triggers.tick(T0 + 60 * MINUTE + timedelta(seconds=30))
    after = await flow.triggers.tick(T0 + 61 * MINUTE)

    assert (during.fired, after.fired) == (0, 1)
    assert len(await runs_of(flow, workflow)) == 1


async def test_archived_and_revised_away_cron_triggers_stop_firing(flow: Flow):
    archived = await flow.define(step("a"), triggers=[{"kind": "cron", "cron": "0 * * * *"}])
    revised = await flow.define(step("a"), triggers=[{"kind": "cron", "cron": "0 * * * *"}])
    await flow.workflows.archive(TENANT, archived.slug)
    await flow.workflows.update(TENANT, revised.slug, {"triggers": [{"kind": "manual"}]})

    tick = await flow.triggers.tick(T0 + timedelta(days=1))

    assert (tick.fired, tick.next_at) == (0, None)


async def test_a_cron_run_of_a_revised_workflow_runs_the_newest_version(flow: Flow):
    workflow = await flow.define(step("a"), triggers=[{"kind": "cron", "cron": "0 * * * *"}])
    await flow.workflows.update(TENANT, workflow.slug, {"steps": [step("b")]})

    await flow.triggers.tick(T0 + 60 * MINUTE)
    await flow.work()

    [run] = await runs_of(flow, workflow)
    assert run.workflow_version == 2
    assert flow.executor.keys() == ["b"]


# -- events --------------------------------------------------------------------------------


async def test_publishing_an_event_starts_each_active_workflow_its_topic_triggers(flow: Flow):
    exact = await flow.define(step("a", inputs={"c": "$.trigger.customer_id"}), triggers=[{"kind": "event", "topic": "usage.imported"}])
    pattern = await flow.define(step("a"), triggers=[{"kind": "event", "topic": "usage.*"}])
    other = await flow.define(step("a"), triggers=[{"kind": "event", "topic": "invoices.imported"}])
    archived = await flow.define(step("a"), triggers=[{"kind": "event", "topic": "usage.imported"}])
    await flow.workflows.archive(TENANT, archived.slug)

    event = await flow.events.publish(TENANT, "usage.imported", {"customer_id": "c-7"})
    await flow.work()

    assert (event.seq, event.topic, event.payload, event.at) == (1, "usage.imported", {"customer_id": "c-7"}, T0)
    [run] = await runs_of(flow, exact)
    assert (run.trigger, run.input) == (TriggerKind.EVENT, {"customer_id": "c-7"})
    assert len(await runs_of(flow, pattern)) == 1
    assert await runs_of(flow, other) == [] and await runs_of(flow, archived) == []
    assert flow.executor.params_of("a") and {"c": "c-7"} in flow.executor.params_of("a")
    # the published event comes first; the runs' own events follow it
    assert [e.topic for e in (await flow.events.list(TENANT)).items][:2] == ["usage.imported", "workflow.run.started"]


async def test_an_event_of_another_tenant_starts_nothing_here(flow: Flow):
    workflow = await flow.define(step("a"), triggers=[{"kind": "event", "topic": "usage.imported"}])

    event = await flow.events.publish(OTHER_TENANT, "usage.imported", {})

    assert event.seq == 1 and event.tenant_id == OTHER_TENANT
    assert await runs_of(flow, workflow) == []
    assert (await flow.events.list(TENANT)).items == []


@pytest.mark.parametrize(
    ("topic", "payload", "path"),
    [
        ("", {}, "topic"),
        ("bad topic", {}, "topic"),
        ("workflow.run.started", {}, "topic"),
        ("fine", [1], "payload"),
        ("fine", {"x": object()}, "payload.x"),
        ("fine", {"big": "x" * 70_000}, "payload"),
    ],
)
async def test_a_bad_event_is_refused_and_stored_nowhere(flow: Flow, topic, payload, path):
    with pytest.raises(ValidationFailed) as refused:
        await flow.events.publish(TENANT, topic, payload)
    assert path in [e.path for e in refused.value.errors]
    assert (await flow.events.list(TENANT)).items == []


async def test_events_are_listed_by_topic_and_after_a_seq(flow: Flow):
    for topic in ("a.x", "b.x", "a.x"):
        await flow.events.publish(TENANT, topic, {})

    assert [e.seq for e in (await flow.events.list(TENANT, EventQuery(topic="a.x"))).items] == [1, 3]
    assert [e.seq for e in (await flow.events.list(TENANT, EventQuery(after_seq=1))).items] == [2, 3]
