"""Operator controls on every store: run now, retry a dead letter, cancel."""

from __future__ import annotations

import pytest

from domain.errors import InvalidTransition, NotFound
from domain.execution import DispatchItem, Outcome
from domain.runs import RunSource, RunStatus
from tests.builders import OTHER_TENANT, TENANT, T0
from tests.engine.harness import Engine

# -- run now ---------------------------------------------------------------------------------


async def test_run_now_creates_a_manual_run_dispatched_at_once(engine: Engine) -> None:
    endpoint = await engine.endpoint(priority=3)

    run = await engine.run_now(endpoint)

    stored = await engine.run(run.id)
    assert stored.status is RunStatus.PENDING
    assert stored.source is RunSource.MANUAL
    assert stored.slot.startswith("manual:")
    assert (stored.scheduled_at, stored.dispatched_at) == (T0, T0)
    assert engine.dispatcher.items == [DispatchItem(run_id=run.id, priority=3)]


async def test_run_now_params_override_the_target_for_that_run_only(engine: Engine) -> None:
    endpoint = await engine.endpoint(
        target={"kind": "python", "handler": "billing.sync", "params": {"full": False, "region": "us"}}
    )

    manual = await engine.run_now(endpoint, {"full": True})
    await engine.execute(manual.id)
    [scheduled] = await engine.fire(60)
    await engine.execute(scheduled)

    assert (await engine.run(manual.id)).params == {"full": True}
    assert engine.executor.params == [{"full": True}, {}]
    assert engine.executor.calls[0].endpoint.target.params == {"full": False, "region": "us"}


async def test_run_now_does_not_take_the_slot_of_the_next_scheduled_run(engine: Engine) -> None:
    endpoint = await engine.endpoint()
    engine.at(60)

    manual = await engine.run_now(endpoint)
    report = await engine.tick()

    assert report.fired == 1
    assert {r.source for r in await engine.runs_of(endpoint)} == {RunSource.MANUAL, RunSource.BASELINE_INTERVAL}
    assert manual.id in engine.dispatcher.run_ids


async def test_run_now_on_a_paused_endpoint_runs_it_once(engine: Engine) -> None:
    endpoint = await engine.endpoint()
    await engine.endpoints.pause(TENANT, endpoint.id)

    run = await engine.run_now(endpoint)
    [recorded] = await engine.execute(run.id)

    assert recorded.status is RunStatus.SUCCEEDED
    assert (await engine.reread(endpoint)).next_run_at is None


async def test_run_now_on_an_archived_endpoint_is_refused(engine: Engine) -> None:
    endpoint = await engine.endpoint()
    await engine.endpoints.archive(TENANT, endpoint.id)

    with pytest.raises(InvalidTransition):
        await engine.run_now(endpoint)

    assert await engine.runs_of(endpoint) == []
    assert engine.dispatcher.items == []


async def test_run_now_on_another_tenants_endpoint_is_not_found(engine: Engine) -> None:
    endpoint = await engine.endpoint()

    with pytest.raises(NotFound):
        await engine.runs.run_now(OTHER_TENANT, endpoint.id)

    assert await engine.runs_of(endpoint) == []


# -- dead letters --------------------------------------------------------------------------------


async def test_retrying_a_dead_letter_creates_a_fresh_pending_run_dispatched_at_once(engine: Engine) -> None:
    endpoint = await engine.endpoint(priority=2)
    engine.executor.script(Outcome.failed("down"), Outcome.succeeded())
    manual = await engine.run_now(endpoint, {"invoice": 42})
    [dead] = await engine.execute(manual.id)
    assert dead.dead_lettered
    engine.dispatcher.take()

    redriven = await engine.runs.retry_dead_letter(TENANT, dead.id)

    stored = await engine.run(redriven.id)
    assert stored.status is RunStatus.PENDING
    assert (stored.source, stored.attempt, stored.retry_of) == (RunSource.RETRY, 1, dead.id)
    assert stored.params == {"invoice": 42}
    assert engine.dispatcher.items == [DispatchItem(run_id=redriven.id, priority=2)]
    [ran] = await engine.execute(redriven.id)
    assert ran.status is RunStatus.SUCCEEDED
    # the original leaves the dead letters, so it cannot be redriven twice by accident
    assert not (await engine.run(dead.id)).dead_lettered
    assert [r.id for r in (await engine.runs.dead_letters(TENANT)).items] == []
    with pytest.raises(InvalidTransition):
        await engine.runs.retry_dead_letter(TENANT, dead.id)


async def test_retrying_a_run_that_is_not_a_dead_letter_is_refused(engine: Engine) -> None:
    endpoint = await engine.endpoint()
    run = await engine.run_now(endpoint)
    await engine.execute(run.id)

    with pytest.raises(InvalidTransition):
        await engine.runs.retry_dead_letter(TENANT, run.id)

    assert len(await engine.runs_of(endpoint)) == 1


# -- cancel --------------------------------------------------------------------------------------


async def test_a_canceled_pending_run_is_never_executed(engine: Engine) -> None:
    await engine.endpoint()
    [run_id] = await engine.fire(60)

    await engine.runs.cancel(TENANT, run_id, reason="not today")

    assert await engine.execute(run_id) == []
    assert engine.executor.calls == []
    stored = await engine.run(run_id)
    assert (stored.status, stored.error) == (RunStatus.CANCELED, "not today")
    engine.dispatcher.take()
    await engine.tick(engine.scheduler_for("scheduler-restarted"))  # a fresh scheduler re-sends pending runs
    assert engine.dispatcher.run_ids == []


async def test_canceling_a_finished_run_is_refused_and_leaves_it_as_it_was(engine: Engine) -> None:
    await engine.endpoint()
    [run_id] = await engine.fire(60)
    [finished] = await engine.execute(run_id)

    with pytest.raises(InvalidTransition):
        await engine.runs.cancel(TENANT, run_id)

    assert await engine.run(run_id) == finished
    assert finished.status is RunStatus.SUCCEEDED


async def test_canceling_another_tenants_run_is_not_found(engine: Engine) -> None:
    await engine.endpoint()
    [run_id] = await engine.fire(60)

    with pytest.raises(NotFound):
        await engine.runs.cancel(OTHER_TENANT, run_id)

    assert (await engine.run(run_id)).status is RunStatus.PENDING
