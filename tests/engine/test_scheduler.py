"""The scheduler's tick on every store: when endpoints fire, with which source, once per slot."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from domain.runs import Run, RunSource, RunStatus, slot_key
from tests.builders import TENANT
from tests.engine.harness import Engine, at


# -- firing when due -------------------------------------------------------------------


async def test_an_interval_endpoint_fires_at_its_slot_and_not_before(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 60})

    engine.clock.set(at(60) - timedelta(milliseconds=1))
    early = await engine.tick()
    assert early.fired == 0
    assert await engine.runs_of(endpoint) == []

    engine.at(60)
    report = await engine.tick()

    assert report.fired == 1
    [run] = await engine.runs_of(endpoint)
    assert run.status is RunStatus.PENDING
    assert run.source is RunSource.BASELINE_INTERVAL
    assert run.scheduled_at == at(60)
    assert run.slot == slot_key(at(60))
    assert run.attempt == 1
    assert engine.dispatcher.run_ids == [run.id]


async def test_a_fired_endpoint_plans_its_next_run_one_interval_later(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 60})

    await engine.fire(60)

    fired = await engine.reread(endpoint)
    assert fired.next_run_at == at(120)
    assert fired.next_run_source is RunSource.BASELINE_INTERVAL
    assert fired.last_run_at == at(60)
    assert fired.claimed_by is None


async def test_a_cron_endpoint_fires_at_its_cron_slot_with_source_baseline_cron(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"cron": "*/5 * * * *"})  # T0 is 12:00, so 12:05 is next

    assert await engine.fire(299) == []
    [run_id] = await engine.fire(300)

    run = await engine.run(run_id)
    assert run.source is RunSource.BASELINE_CRON
    assert run.scheduled_at == at(300)
    assert (await engine.reread(endpoint)).next_run_at == at(600)


async def test_an_endpoint_due_before_the_tick_fires_late_once_and_plans_from_the_tick(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 60})

    fired = await engine.fire(200)  # three slots' worth of time went by

    assert len(fired) == 1
    [run] = await engine.runs_of(endpoint)
    assert run.scheduled_at == at(60)
    assert (await engine.reread(endpoint)).next_run_at == at(260)


async def test_an_interval_below_min_interval_fires_clamped_min(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 60}, min_interval_s=120)

    assert await engine.fire(60) == []
    [run_id] = await engine.fire(120)

    assert (await engine.run(run_id)).source is RunSource.CLAMPED_MIN
    assert (await engine.reread(endpoint)).next_run_source is RunSource.CLAMPED_MIN


async def test_an_interval_above_max_interval_fires_clamped_max(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 3600}, max_interval_s=300)

    assert await engine.fire(299) == []
    [run_id] = await engine.fire(300)

    assert (await engine.run(run_id)).source is RunSource.CLAMPED_MAX
    assert (await engine.reread(endpoint)).next_run_at == at(600)


# -- hints -----------------------------------------------------------------------------


async def test_an_interval_hint_sets_the_cadence_until_it_expires_then_the_baseline_returns(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 60})
    hinted = await engine.endpoints.set_interval_hint(TENANT, endpoint.id, {"interval_s": 20, "ttl_s": 45})
    assert hinted.next_run_at == at(20)

    first = await engine.fire(20)
    second = await engine.fire(40)
    last = await engine.fire(60)  # the hint lived until T0+45: this run was planned under it

    sources = [(await engine.run(run_id)).source for run_id in first + second + last]
    assert sources == [RunSource.HINT_INTERVAL] * 3
    after = await engine.reread(endpoint)
    assert after.interval_hint is None
    assert after.next_run_source is RunSource.BASELINE_INTERVAL
    assert after.next_run_at == at(120)
    assert await engine.fire(80) == []


async def test_a_oneshot_hint_fires_once_at_its_time_then_the_baseline_resumes(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 60})
    await engine.endpoints.set_oneshot_hint(
        TENANT, endpoint.id, {"run_at": at(15).isoformat(), "ttl_s": 600}
    )

    assert await engine.fire(14) == []
    [run_id] = await engine.fire(15)

    assert (await engine.run(run_id)).source is RunSource.HINT_ONESHOT
    after = await engine.reread(endpoint)
    assert after.oneshot_hint is None
    assert (after.next_run_at, after.next_run_source) == (at(75), RunSource.BASELINE_INTERVAL)


# -- once per slot ---------------------------------------------------------------------


async def test_a_repeated_tick_does_not_fire_a_slot_again(engine: Engine) -> None:
    endpoint = await engine.endpoint()
    engine.at(60)

    first = await engine.tick()
    again = await engine.tick()

    assert (first.fired, again.fired) == (1, 0)
    assert len(await engine.runs_of(endpoint)) == 1


async def test_two_schedulers_ticking_at_once_fire_a_slot_once(engine: Engine) -> None:
    endpoint = await engine.endpoint()
    a, b = engine.scheduler_for("scheduler-a"), engine.scheduler_for("scheduler-b")
    engine.at(60)

    reports = await asyncio.gather(a.tick(), b.tick())

    assert sum(r.fired for r in reports) == 1
    [run] = await engine.runs_of(endpoint)
    assert engine.dispatcher.run_ids == [run.id]
    assert (await engine.reread(endpoint)).next_run_at == at(120)


async def test_two_schedulers_share_many_due_endpoints_firing_each_once(engine: Engine) -> None:
    endpoints = [await engine.endpoint() for _ in range(12)]
    engine.at(60)

    async def drain(owner: str) -> int:
        scheduler = engine.scheduler_for(owner, batch=3)
        fired = 0
        for _ in range(8):
            fired += (await scheduler.tick()).fired
        return fired

    fired = await asyncio.gather(drain("scheduler-a"), drain("scheduler-b"))

    assert sum(fired) == 12
    for endpoint in endpoints:
        assert [r.scheduled_at for r in await engine.runs_of(endpoint)] == [at(60)]
    assert sorted(engine.dispatcher.run_ids) == sorted(set(engine.dispatcher.run_ids))


# -- what does not fire ----------------------------------------------------------------


async def test_a_paused_endpoint_does_not_fire_until_resumed(engine: Engine) -> None:
    endpoint = await engine.endpoint()
    await engine.endpoints.pause(TENANT, endpoint.id)

    assert await engine.fire(3600) == []

    await engine.endpoints.resume(TENANT, endpoint.id)
    assert await engine.fire(3659) == []
    assert len(await engine.fire(3660)) == 1


async def test_an_endpoint_of_a_paused_job_does_not_fire_until_the_job_resumes(engine: Engine) -> None:
    job = await engine.job()
    endpoint = await engine.endpoint(job=job)
    await engine.jobs.pause(TENANT, job.id)

    assert await engine.fire(120) == []
    assert await engine.runs_of(endpoint) == []

    await engine.jobs.resume(TENANT, job.id)
    assert len(await engine.fire(121)) == 1


async def test_an_archived_endpoint_never_fires(engine: Engine) -> None:
    endpoint = await engine.endpoint()
    await engine.endpoints.archive(TENANT, endpoint.id)

    assert await engine.fire(60) == []
    assert await engine.fire(86_400) == []
    assert await engine.runs_of(endpoint) == []


async def test_an_endpoint_paused_until_a_time_skips_its_slots_and_fires_after_the_pause(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 60})
    await engine.endpoints.pause(TENANT, endpoint.id, until=at(300))

    assert await engine.fire(60) == []
    assert await engine.fire(300) == []  # the first slot is planned from the end of the pause
    [run_id] = await engine.fire(360)

    assert (await engine.run(run_id)).scheduled_at == at(360)


# -- changes take effect at the next tick ------------------------------------------------


async def test_a_schedule_change_takes_effect_at_the_next_tick(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 60})
    await engine.fire(60)

    await engine.endpoints.update(TENANT, endpoint.id, {"schedule": {"interval_s": 10}})

    [run_id] = await engine.fire(70)
    assert (await engine.run(run_id)).scheduled_at == at(70)
    assert (await engine.reread(endpoint)).next_run_at == at(80)


async def test_a_change_to_cron_fires_at_the_cron_slot_not_the_old_interval(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 60})

    await engine.endpoints.update(TENANT, endpoint.id, {"schedule": {"cron": "0 13 * * *"}})

    assert await engine.fire(60) == []
    [run_id] = await engine.fire(3600)
    assert (await engine.run(run_id)).source is RunSource.BASELINE_CRON


# -- how long to sleep -------------------------------------------------------------------


async def test_the_tick_sleeps_until_the_earliest_next_run(engine: Engine) -> None:
    await engine.endpoint(schedule={"interval_s": 90})
    await engine.endpoint(schedule={"cron": "*/5 * * * *"})
    engine.at(30)

    report = await engine.tick()

    assert report.fired == 0
    assert report.sleep_s == 60.0


async def test_the_tick_sleeps_at_most_max_sleep(engine: Engine) -> None:
    await engine.endpoint(schedule={"interval_s": 600})
    scheduler = engine.scheduler_for("scheduler-b", max_sleep=timedelta(seconds=2))

    assert (await scheduler.tick()).sleep_s == 2.0


async def test_the_tick_of_an_empty_store_sleeps_max_sleep(engine: Engine) -> None:
    scheduler = engine.scheduler_for("scheduler-b", max_sleep=timedelta(seconds=3))

    assert (await scheduler.tick()).sleep_s == 3.0


async def test_a_full_batch_asks_for_no_sleep_and_the_next_tick_takes_the_rest(engine: Engine) -> None:
    for _ in range(3):
        await engine.endpoint()
    scheduler = engine.scheduler_for("scheduler-b", batch=2)
    engine.at(60)

    full = await scheduler.tick()
    rest = await scheduler.tick()

    assert (full.fired, full.sleep_s) == (2, 0.0)
    assert rest.fired == 1
    assert rest.sleep_s == 60.0


async def test_an_overdue_endpoint_of_a_paused_job_does_not_keep_the_scheduler_awake(engine: Engine) -> None:
    job = await engine.job()
    await engine.endpoint(job=job)
    await engine.jobs.pause(TENANT, job.id)
    scheduler = engine.scheduler_for("scheduler-b", max_sleep=timedelta(seconds=5))
    engine.at(600)

    report = await scheduler.tick()

    assert report.fired == 0
    assert report.sleep_s == 5.0


# -- priorities and re-dispatch ---------------------------------------------------------------


async def test_dispatch_items_carry_the_endpoint_priority(engine: Engine) -> None:
    urgent = await engine.endpoint(priority=7)
    routine = await engine.endpoint(priority=0)
    engine.at(60)

    await engine.tick()

    by_run = {item.run_id: item.priority for item in engine.dispatcher.items}
    [urgent_run] = await engine.runs_of(urgent)
    [routine_run] = await engine.runs_of(routine)
    assert by_run == {urgent_run.id: 7, routine_run.id: 0}


async def test_higher_priority_endpoints_are_claimed_first(engine: Engine) -> None:
    routine = await engine.endpoint(priority=1)
    urgent = await engine.endpoint(priority=8)
    scheduler = engine.scheduler_for("scheduler-b", batch=1)
    engine.at(60)

    await scheduler.tick()

    assert len(await engine.runs_of(urgent)) == 1
    assert await engine.runs_of(routine) == []
    assert [item.priority for item in engine.dispatcher.items] == [8]


async def test_a_fresh_scheduler_redispatches_pending_runs_at_once_and_later_only_after_redispatch_after(
    engine: Engine,
) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 600}, priority=4)
    [run_id] = await engine.fire(600)
    assert await engine.fire(601) == []  # the same scheduler: sent a second ago, not again

    restarted = engine.scheduler_for(
        "scheduler-b", redispatch_after=timedelta(seconds=30), sweep_every=timedelta(seconds=5)
    )
    engine.at(602)
    await restarted.tick()
    assert [(i.run_id, i.priority) for i in engine.dispatcher.items] == [(run_id, 4)]
    engine.dispatcher.take()

    engine.at(631)
    await restarted.tick()  # swept: sent 29 s ago, not lost yet
    assert engine.dispatcher.take() == []

    engine.at(633)
    await restarted.tick()  # lost by now, but the last sweep was 2 s ago
    assert engine.dispatcher.take() == []

    engine.at(636)
    await restarted.tick()
    assert engine.dispatcher.take() == [run_id]
    assert [r.id for r in await engine.runs_of(endpoint)] == [run_id]


async def test_runs_never_sent_are_sent_when_due_at_any_tick_between_sweeps(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 600})
    scheduler = engine.scheduler_for("scheduler-b", sweep_every=timedelta(minutes=5))
    engine.at(1)
    await scheduler.tick()  # its first tick sweeps; the next sweep is minutes away
    async with engine.store.unit_of_work() as uow:
        [waiting] = await uow.runs.add_new([
            Run.scheduled(
                tenant_id=endpoint.tenant_id, endpoint_id=endpoint.id, job_id=None, source=RunSource.RETRY,
                scheduled_at=at(3), now=at(2),
            )
        ])
        await uow.commit()

    engine.at(2)
    report = await scheduler.tick()
    assert engine.dispatcher.take() == []
    assert report.sleep_s == pytest.approx(1.0)  # it sleeps until the run is due

    engine.at(3)
    await scheduler.tick()
    assert engine.dispatcher.take() == [waiting.id]
    assert (await engine.run(waiting.id)).dispatched_at == at(3)


# -- firing ahead of time (lookahead) ------------------------------------------------------------

LOOKAHEAD = timedelta(milliseconds=100)


async def ahead(engine: Engine, *, allow_concurrent: bool = False, **schedule: Any):
    """An endpoint every 60 s (first slot ``at(60)``) and a scheduler with :data:`LOOKAHEAD`."""
    endpoint = await engine.endpoint(schedule={"interval_s": 60, **schedule}, allow_concurrent=allow_concurrent)
    return endpoint, engine.scheduler_for("scheduler-ahead", lookahead=LOOKAHEAD)


async def test_with_a_lookahead_an_endpoint_fires_ahead_and_its_run_is_sent_at_once_with_its_slot(
    engine: Engine,
) -> None:
    endpoint, scheduler = await ahead(engine)

    engine.clock.set(at(60) - timedelta(milliseconds=150))
    assert (await engine.tick(scheduler)).fired == 0  # not yet within the lookahead

    engine.clock.set(at(60) - timedelta(milliseconds=80))
    report = await engine.tick(scheduler)
    [run] = await engine.runs_of(endpoint)
    assert (report.fired, report.dispatched) == (1, 1)
    assert (run.status, run.scheduled_at, run.slot) == (RunStatus.PENDING, at(60), slot_key(at(60)))
    assert [(i.run_id, i.not_before) for i in engine.dispatcher.items] == [(run.id, at(60))]
    # the next tick: when the next slot is half a lookahead away
    assert report.sleep_s == pytest.approx((at(120) - LOOKAHEAD / 2 - engine.clock.now()).total_seconds())


async def test_runs_due_when_fired_carry_no_slot_to_wait_for(engine: Engine) -> None:
    _, scheduler = await ahead(engine)
    engine.at(61)

    await engine.tick(scheduler)

    assert [i.not_before for i in engine.dispatcher.items] == [None]


async def test_an_endpoint_fired_ahead_plans_its_next_run_from_its_slot_so_the_cadence_does_not_drift(
    engine: Engine,
) -> None:
    endpoint, scheduler = await ahead(engine)

    engine.clock.set(at(60) - timedelta(milliseconds=80))
    await engine.tick(scheduler)

    assert (await engine.reread(endpoint)).next_run_at == at(120)


async def test_a_worker_starts_a_run_sent_ahead_at_its_slot_not_before(engine: Engine) -> None:
    endpoint, scheduler = await ahead(engine)
    now_due = await engine.run_now(endpoint)
    engine.clock.set(at(60) - timedelta(milliseconds=50))
    await engine.tick(scheduler)
    [ahead_item] = [i for i in engine.dispatcher.items if i.not_before is not None]

    execution = engine.execution_service()
    task = asyncio.ensure_future(
        execution.execute([ahead_item.run_id, now_due.id], worker="w", not_before=[ahead_item.not_before, None])
    )
    for _ in range(100):  # the run without a slot goes at once
        if (await engine.run(now_due.id)).status is RunStatus.SUCCEEDED:
            break
        await asyncio.sleep(0.005)
    assert (await engine.run(now_due.id)).status is RunStatus.SUCCEEDED
    # taken second, the run sent ahead found its exclusive endpoint busy: it is tried again at its slot
    assert (await engine.run(ahead_item.run_id)).status is RunStatus.PENDING

    engine.at(60)
    finished = await asyncio.wait_for(task, 5)

    assert {r.id for r in finished} == {ahead_item.run_id, now_due.id}
    started = await engine.run(ahead_item.run_id)
    assert (started.status, started.started_at) == (RunStatus.SUCCEEDED, at(60))


async def taken_ahead(engine: Engine) -> tuple[Any, asyncio.Future]:
    """A run fired 50 ms ahead of its slot (an endpoint that allows concurrent runs), handed to
    worker ``w``, once the worker has taken it; the run's item and the execution's future."""
    _, scheduler = await ahead(engine, allow_concurrent=True)
    engine.clock.set(at(60) - timedelta(milliseconds=50))
    await engine.tick(scheduler)
    [item] = engine.dispatcher.items
    execution = engine.execution_service()
    task = asyncio.ensure_future(execution.execute([item.run_id], worker="w", not_before=[item.not_before]))
    for _ in range(100):
        if (await engine.run(item.run_id)).status is RunStatus.RUNNING:
            break
        await asyncio.sleep(0.005)
    return item, task


async def test_a_run_sent_ahead_is_taken_at_once_and_its_handler_called_at_its_slot(engine: Engine) -> None:
    # Given a run fired ahead of its slot, when a worker gets it before the slot
    item, task = await taken_ahead(engine)

    # Then it is running for that worker, started as of its slot, and its handler is not called yet
    taken = await engine.run(item.run_id)
    assert (taken.status, taken.worker_id, taken.started_at) == (RunStatus.RUNNING, "w", at(60))
    await asyncio.sleep(0.05)
    assert engine.executor.calls == []

    # And at the slot the handler is called and the run recorded as started then
    engine.at(60)
    [finished] = await asyncio.wait_for(task, 5)
    assert len(engine.executor.calls) == 1
    assert (finished.status, finished.started_at) == (RunStatus.SUCCEEDED, at(60))
    assert (await engine.run(item.run_id)).started_at == at(60)


async def test_a_run_taken_ahead_whose_handler_began_after_its_slot_records_when_it_began(engine: Engine) -> None:
    item, task = await taken_ahead(engine)

    late = at(60) + timedelta(milliseconds=7)  # the worker was busy when the slot came
    engine.clock.set(late)
    [finished] = await asyncio.wait_for(task, 5)

    assert finished.started_at == late
    assert (await engine.run(item.run_id)).started_at == late


async def test_runs_fired_ahead_whose_send_failed_are_swept_once_due(engine: Engine) -> None:
    _, scheduler = await ahead(engine)
    engine.clock.set(at(60) - timedelta(milliseconds=50))
    engine.dispatcher.fail_next = True
    with pytest.raises(RuntimeError):
        await engine.tick(scheduler)

    engine.clock.set(at(60) + timedelta(milliseconds=10))
    report = await engine.tick(scheduler)  # within the sweep: every due pending run again

    assert report.dispatched == 1
    assert len(engine.dispatcher.run_ids) == 1
