"""Workers on every store: runs execute once, retry, dead-letter, time out, stay exclusive, stop when canceled;
the reconciler expires runs whose worker went silent."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from domain.endpoints import EndpointStatus
from domain.execution import DispatchItem, Outcome
from domain.ids import RunId
from domain.run_logs import LogLevel
from domain.runs import RunResult, RunSource, RunStatus
from services.scheduler import ReconcileReport
from tests.builders import TENANT
from tests.engine.fakes import WAIT_S, Block, Log, Raise, Sleep
from tests.engine.harness import Engine, at

HEARTBEAT_TIMEOUT = timedelta(seconds=60)
"""How long the reconciler lets a running run go without a heartbeat, in these tests."""


async def reconcile(engine: Engine) -> ReconcileReport:
    return await engine.scheduler.reconcile(heartbeat_timeout=HEARTBEAT_TIMEOUT, recorder=engine.recorder)


async def heartbeat_at(engine: Engine, run_id: RunId, moment: datetime) -> None:
    """Return once the run's worker has sent a heartbeat at ``moment``."""
    while (await engine.run(run_id)).heartbeat_at != moment:
        await asyncio.sleep(0.01)


# -- one run, start to finish ---------------------------------------------------------------


async def test_a_dispatched_run_goes_from_pending_to_running_to_succeeded_with_its_result(engine: Engine) -> None:
    endpoint = await engine.endpoint()
    gate = engine.executor.gate()
    result = RunResult(status_code=200, body_excerpt='{"rows": 3}', output={"rows": 3})
    engine.executor.script(Block(gate, then=Outcome.succeeded(result)))
    [run_id] = await engine.fire(60)
    assert (await engine.run(run_id)).status is RunStatus.PENDING

    worker = engine.background(engine.execute(run_id, worker="worker-7"))
    await engine.executor.wait_started()
    running = await engine.run(run_id)
    assert running.status is RunStatus.RUNNING
    assert (running.worker_id, running.started_at) == ("worker-7", at(60))

    engine.at(62)
    gate.set()
    [recorded] = await asyncio.wait_for(worker, WAIT_S)

    stored = await engine.run(run_id)
    assert stored == recorded
    assert stored.status is RunStatus.SUCCEEDED
    assert stored.result == result
    assert stored.finished_at == at(62)
    assert stored.duration_ms == 2000
    assert stored.error is None
    assert engine.executor.calls[0].endpoint.id == endpoint.id


async def test_the_lines_a_run_logs_are_kept_in_order(engine: Engine) -> None:
    await engine.endpoint()
    lines = ((LogLevel.INFO, "fetching ledger"), (LogLevel.WARNING, "upstream slow: 1.2 s"), (LogLevel.INFO, "done"))
    engine.executor.script(Log(lines))
    [run_id] = await engine.fire(60)

    await engine.execute(run_id)

    logged = await engine.runs.logs(TENANT, run_id)
    assert [(line.seq, line.level, line.message) for line in logged] == [
        (1, LogLevel.INFO, "fetching ledger"),
        (2, LogLevel.WARNING, "upstream slow: 1.2 s"),
        (3, LogLevel.INFO, "done"),
    ]
    assert all(line.run_id == run_id and line.tenant_id == TENANT for line in logged)


async def test_a_run_without_log_lines_has_an_empty_log(engine: Engine) -> None:
    await engine.endpoint()
    [run_id] = await engine.fire(60)

    await engine.execute(run_id)

    assert list(await engine.runs.logs(TENANT, run_id)) == []


# -- exactly once ------------------------------------------------------------------------------


async def test_a_message_delivered_twice_executes_its_run_once(engine: Engine) -> None:
    await engine.endpoint()
    [run_id] = await engine.fire(60)

    first = await engine.execute(run_id, worker="worker-a")
    again = await engine.execute(run_id, worker="worker-b")

    assert [r.id for r in first] == [run_id]
    assert again == []
    assert len(engine.executor.calls) == 1
    assert (await engine.run(run_id)).worker_id == "worker-a"


@pytest.mark.parametrize(
    "second", ["worker-b", "worker-a"], ids=["to two workers", "twice to one worker (its batches share a start)"]
)
async def test_a_message_delivered_twice_at_once_executes_its_run_once(engine: Engine, second: str) -> None:
    await engine.endpoint(allow_concurrent=True)  # so only the run's own state keeps the second delivery out
    [run_id] = await engine.fire(60)

    results = await asyncio.gather(engine.execute(run_id, worker="worker-a"), engine.execute(run_id, worker=second))

    assert sorted(len(r) for r in results) == [0, 1]
    assert len(engine.executor.calls) == 1
    assert (await engine.run(run_id)).status is RunStatus.SUCCEEDED


async def test_a_message_naming_a_run_twice_executes_it_once(engine: Engine) -> None:
    await engine.endpoint()
    [run_id] = await engine.fire(60)

    recorded = await engine.execute(run_id, run_id)

    assert [r.id for r in recorded] == [run_id]
    assert len(engine.executor.calls) == 1


# -- retries and dead letters -------------------------------------------------------------------


async def test_a_failing_run_is_retried_with_backoff_then_dead_lettered_after_its_last_attempt(engine: Engine) -> None:
    endpoint = await engine.endpoint(retry={"max_attempts": 3, "backoff_s": 10, "jitter": False})
    engine.executor.script(Outcome.failed("HTTP 502"), Outcome.failed("HTTP 503"), Outcome.failed("HTTP 504"))

    # Attempt 1 fails: a retry waits 10 s.
    [first_id] = await engine.fire(60)
    [first] = await engine.execute(first_id)
    assert (first.status, first.error, first.dead_lettered) == (RunStatus.FAILED, "HTTP 502", False)
    [second] = await engine.runs_of(endpoint, source=RunSource.RETRY)
    assert second.status is RunStatus.PENDING
    assert (second.attempt, second.slot, second.retry_of) == (2, f"retry:{first_id}", first_id)
    assert second.scheduled_at == at(70)
    assert engine.dispatcher.run_ids == []
    assert (await engine.tick()).sleep_s == 10.0

    # The scheduler dispatches it when due; attempt 2 fails: the next waits twice as long.
    assert await engine.fire(69) == []
    assert await engine.fire(70) == [second.id]
    await engine.execute(second.id)
    third = next(r for r in await engine.runs_of(endpoint, source=RunSource.RETRY) if r.attempt == 3)
    assert (third.retry_of, third.scheduled_at) == (second.id, at(90))
    assert (await engine.reread(endpoint)).failure_count == 0

    # Attempt 3 is the last: dead-lettered, no fourth.
    assert await engine.fire(90) == [third.id]
    [last] = await engine.execute(third.id)

    assert (last.status, last.dead_lettered) == (RunStatus.FAILED, True)
    assert [r.attempt for r in await engine.runs_of(endpoint)] == [1, 2, 3]
    dead = await engine.runs.dead_letters(TENANT)
    assert [r.id for r in dead.items] == [third.id]
    assert (await engine.reread(endpoint)).failure_count == 1


async def test_a_retry_carries_the_params_of_the_run_it_retries(engine: Engine) -> None:
    endpoint = await engine.endpoint(retry={"max_attempts": 2, "backoff_s": 1, "jitter": False})
    engine.executor.script(Outcome.failed("boom"))
    manual = await engine.run_now(endpoint, {"region": "eu"})
    await engine.execute(manual.id)

    [retry] = await engine.runs_of(endpoint, source=RunSource.RETRY)
    assert await engine.fire(1) == [retry.id]
    await engine.execute(retry.id)

    assert engine.executor.params == [{"region": "eu"}, {"region": "eu"}]


async def test_a_non_retryable_failure_is_dead_lettered_at_once(engine: Engine) -> None:
    endpoint = await engine.endpoint(retry={"max_attempts": 3, "backoff_s": 1})
    engine.executor.script(Outcome.failed("unknown handler", retryable=False))
    [run_id] = await engine.fire(60)

    [run] = await engine.execute(run_id)

    assert (run.status, run.dead_lettered) == (RunStatus.FAILED, True)
    assert await engine.runs_of(endpoint, source=RunSource.RETRY) == []
    assert (await engine.reread(endpoint)).failure_count == 1


async def test_an_executor_that_raises_fails_the_run_and_it_is_retried(engine: Engine) -> None:
    endpoint = await engine.endpoint(retry={"max_attempts": 2, "backoff_s": 1})
    engine.executor.script(Raise(RuntimeError("executor bug")))
    [run_id] = await engine.fire(60)

    [run] = await engine.execute(run_id)

    assert run.status is RunStatus.FAILED
    assert "RuntimeError: executor bug" in (run.error or "")
    assert len(await engine.runs_of(endpoint, source=RunSource.RETRY)) == 1


async def test_a_final_failure_counts_and_backs_off_the_cadence_and_a_success_resets_it(engine: Engine) -> None:
    endpoint = await engine.endpoint(schedule={"interval_s": 60})
    engine.executor.script(Outcome.failed("down"), Outcome.succeeded())

    [failing] = await engine.fire(60)
    await engine.execute(failing)
    after_failure = await engine.reread(endpoint)
    assert after_failure.failure_count == 1
    assert after_failure.next_run_at == at(180)  # one failure doubles the interval

    [succeeding] = await engine.fire(180)
    await engine.execute(succeeding)
    after_success = await engine.reread(endpoint)
    assert after_success.failure_count == 0
    assert after_success.next_run_at == at(240)


async def test_an_endpoint_auto_pauses_after_its_limit_of_consecutive_final_failures(engine: Engine) -> None:
    endpoint = await engine.endpoint(auto_pause_after=2)
    engine.executor.script(Outcome.failed("down"), Outcome.failed("still down"))

    [first] = await engine.fire(60)
    await engine.execute(first)
    assert (await engine.reread(endpoint)).status is EndpointStatus.ACTIVE

    [second] = await engine.fire(180)
    await engine.execute(second)

    paused = await engine.reread(endpoint)
    assert (paused.status, paused.failure_count, paused.next_run_at) == (EndpointStatus.PAUSED, 2, None)
    assert await engine.fire(86_400) == []


# -- timeouts ---------------------------------------------------------------------------------


async def test_a_run_that_exceeds_its_timeout_ends_timed_out_and_is_retried(engine: Engine) -> None:
    endpoint = await engine.endpoint(timeout_s=0.05, retry={"max_attempts": 2, "backoff_s": 1})
    engine.executor.script(Sleep(1.0))
    [run_id] = await engine.fire(60)

    [run] = await engine.execute(run_id)

    assert run.status is RunStatus.TIMED_OUT
    assert "timeout" in (run.error or "")
    assert engine.executor.calls[0].cancelled
    assert (await engine.run(run_id)).status is RunStatus.TIMED_OUT
    [retry] = await engine.runs_of(endpoint, source=RunSource.RETRY)
    assert (retry.attempt, retry.retry_of) == (2, run_id)


# -- exclusive and concurrent endpoints --------------------------------------------------------


async def test_an_exclusive_endpoint_runs_one_run_at_a_time_and_dispatches_the_next_when_it_ends(
    engine: Engine,
) -> None:
    endpoint = await engine.endpoint()
    gate = engine.executor.gate()
    engine.executor.script(Block(gate))
    first = await engine.run_now(endpoint)
    second = await engine.run_now(endpoint)
    engine.dispatcher.take()

    # Given two workers that receive the endpoint's two pending runs at once
    workers = {
        engine.background(engine.execute(first.id, worker="worker-a")),
        engine.background(engine.execute(second.id, worker="worker-b")),
    }
    # When one starts its run, the other finds the endpoint busy and returns
    done, _ = await asyncio.wait(workers, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1, "both workers started a run of an exclusive endpoint"
    [idle] = done
    assert idle.result() == []
    assert len(engine.executor.calls) == 1
    statuses = {(await engine.run(r.id)).status for r in (first, second)}
    assert statuses == {RunStatus.RUNNING, RunStatus.PENDING}

    # Then, when the running one ends, the waiting one is dispatched again
    gate.set()
    [busy] = workers - done
    [finished] = await asyncio.wait_for(busy, WAIT_S)
    waiting = second if finished.id == first.id else first
    assert (await engine.run(waiting.id)).status is RunStatus.PENDING
    assert engine.dispatcher.run_ids == [waiting.id]

    [ran] = await engine.execute(waiting.id)
    assert ran.status is RunStatus.SUCCEEDED
    assert engine.executor.most_running == 1


async def test_the_run_an_exclusive_run_frees_is_dispatched_with_its_endpoint_priority(engine: Engine) -> None:
    endpoint = await engine.endpoint(priority=6)
    gate = engine.executor.gate()
    engine.executor.script(Block(gate))
    first = await engine.run_now(endpoint)
    second = await engine.run_now(endpoint)
    worker = engine.background(engine.execute(first.id))
    await engine.executor.wait_started()
    assert await engine.execute(second.id) == []
    engine.dispatcher.take()

    gate.set()
    await asyncio.wait_for(worker, WAIT_S)

    assert engine.dispatcher.items == [DispatchItem(run_id=second.id, priority=6)]


async def test_an_endpoint_that_allows_concurrency_runs_its_runs_at_once(engine: Engine) -> None:
    endpoint = await engine.endpoint(allow_concurrent=True)
    gate = engine.executor.gate()
    engine.executor.script(Block(gate), Block(gate))
    first = await engine.run_now(endpoint)
    second = await engine.run_now(endpoint)

    workers = [
        engine.background(engine.execute(first.id, worker="worker-a")),
        engine.background(engine.execute(second.id, worker="worker-b")),
    ]
    await engine.executor.wait_started(2)
    assert {(await engine.run(r.id)).status for r in (first, second)} == {RunStatus.RUNNING}

    gate.set()
    results = await asyncio.wait_for(asyncio.gather(*workers), WAIT_S)
    assert [r.status for [r] in results] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
    assert engine.executor.most_running == 2


# -- canceling -------------------------------------------------------------------------------


async def test_canceling_a_running_run_stops_its_executor_and_the_worker_keeps_it_canceled(engine: Engine) -> None:
    endpoint = await engine.endpoint(retry={"max_attempts": 3, "backoff_s": 1})
    gate = engine.executor.gate()
    engine.executor.script(Block(gate))
    [run_id] = await engine.fire(60)
    worker = engine.background(engine.execute(run_id))
    await engine.executor.wait_started()

    canceled = await engine.runs.cancel(TENANT, run_id)
    assert canceled.status is RunStatus.CANCELED

    recorded = await asyncio.wait_for(worker, WAIT_S)  # the next heartbeat finds it canceled

    assert recorded == []
    assert engine.executor.calls[0].cancelled
    stored = await engine.run(run_id)
    assert (stored.status, stored.error, stored.result) == (RunStatus.CANCELED, "canceled by an operator", None)
    assert await engine.runs_of(endpoint, source=RunSource.RETRY) == []
    assert (await engine.reread(endpoint)).failure_count == 0


async def test_a_run_canceled_while_its_executor_finishes_stays_canceled(engine: Engine) -> None:
    await engine.endpoint()
    gate = engine.executor.gate()
    engine.executor.script(Block(gate, then=Outcome.succeeded(RunResult(status_code=200))))
    [run_id] = await engine.fire(60)
    slow_beats = engine.execution_service(heartbeat=timedelta(seconds=30))
    worker = engine.background(slow_beats.execute([run_id], worker="worker-1"))
    await engine.executor.wait_started()

    await engine.runs.cancel(TENANT, run_id)
    gate.set()  # the executor ends before any heartbeat could notice

    assert await asyncio.wait_for(worker, WAIT_S) == []
    assert engine.executor.calls[0].finished
    stored = await engine.run(run_id)
    assert (stored.status, stored.result) == (RunStatus.CANCELED, None)


# -- the reconciler ------------------------------------------------------------------------------


async def test_the_reconciler_expires_a_run_whose_heartbeats_stopped_and_retries_it(engine: Engine) -> None:
    endpoint = await engine.endpoint(retry={"max_attempts": 2, "backoff_s": 5, "jitter": False})
    engine.executor.script(Block(engine.executor.gate()))
    [run_id] = await engine.fire(60)
    hung = engine.execution_service(heartbeat=timedelta(seconds=30))  # no beat within the test
    engine.background(hung.execute([run_id], worker="worker-hung"))
    await engine.executor.wait_started()

    engine.at(90)
    assert await reconcile(engine) == ReconcileReport(expired=0, retried=0)
    assert (await engine.run(run_id)).status is RunStatus.RUNNING

    engine.at(121)
    assert await reconcile(engine) == ReconcileReport(expired=1, retried=1)

    expired = await engine.run(run_id)
    assert (expired.status, expired.dead_lettered, expired.finished_at) == (RunStatus.EXPIRED, False, at(121))
    [retry] = await engine.runs_of(endpoint, source=RunSource.RETRY)
    assert (retry.status, retry.attempt, retry.retry_of) == (RunStatus.PENDING, 2, run_id)
    assert retry.scheduled_at == at(126)
    assert await reconcile(engine) == ReconcileReport(expired=0, retried=0)
    assert retry.id in await engine.fire(126)


async def test_the_reconciler_dead_letters_a_silent_run_on_its_last_attempt(engine: Engine) -> None:
    endpoint = await engine.endpoint()
    engine.executor.script(Block(engine.executor.gate()))
    [run_id] = await engine.fire(60)
    hung = engine.execution_service(heartbeat=timedelta(seconds=30))
    engine.background(hung.execute([run_id], worker="worker-hung"))
    await engine.executor.wait_started()

    engine.at(200)
    assert await reconcile(engine) == ReconcileReport(expired=1, retried=0)

    run = await engine.run(run_id)
    assert (run.status, run.dead_lettered) == (RunStatus.EXPIRED, True)
    assert (await engine.reread(endpoint)).failure_count == 1


async def test_a_worker_that_outlives_its_heartbeat_timeout_does_not_overwrite_the_expired_run(engine: Engine) -> None:
    await engine.endpoint()
    gate = engine.executor.gate()
    engine.executor.script(Block(gate, then=Outcome.succeeded(RunResult(status_code=200))))
    [run_id] = await engine.fire(60)
    hung = engine.execution_service(heartbeat=timedelta(seconds=30))
    worker = engine.background(hung.execute([run_id], worker="worker-hung"))
    await engine.executor.wait_started()
    engine.at(200)
    await reconcile(engine)

    gate.set()

    assert await asyncio.wait_for(worker, WAIT_S) == []
    stored = await engine.run(run_id)
    assert (stored.status, stored.result) == (RunStatus.EXPIRED, None)


async def test_the_reconciler_leaves_runs_with_recent_heartbeats_alone(engine: Engine) -> None:
    await engine.endpoint()
    gate = engine.executor.gate()
    engine.executor.script(Block(gate))
    [run_id] = await engine.fire(60)
    worker = engine.background(engine.execute(run_id))  # beats every 20 ms at the clock's time
    await engine.executor.wait_started()

    engine.at(600)
    await asyncio.wait_for(heartbeat_at(engine, run_id, at(600)), WAIT_S)
    report = await reconcile(engine)

    assert report == ReconcileReport(expired=0, retried=0)
    gate.set()
    [run] = await asyncio.wait_for(worker, WAIT_S)
    assert run.status is RunStatus.SUCCEEDED


# -- batches that arrive together ------------------------------------------------------------


async def test_batches_that_reach_one_worker_at_once_each_get_their_own_runs_recorded(engine: Engine) -> None:
    endpoints = [await engine.endpoint() for _ in range(3)]
    run_ids = await engine.fire(60)
    assert len(run_ids) == len(endpoints)

    results = await asyncio.gather(*(engine.execute(run_id, worker="worker-a") for run_id in run_ids))

    assert [[run.id for run in recorded] for recorded in results] == [[run_id] for run_id in run_ids]
    assert len(engine.executor.calls) == 3
    for run_id in run_ids:
        stored = await engine.run(run_id)
        assert (stored.status, stored.worker_id) == (RunStatus.SUCCEEDED, "worker-a")


async def test_each_run_of_a_batch_finishes_when_its_own_work_ends_not_when_the_batch_does(engine: Engine) -> None:
    await engine.endpoint()
    await engine.endpoint()
    slow, fast = await engine.fire(60)
    gate = engine.executor.gate()
    engine.executor.script(Block(gate), Outcome.succeeded())
    worker = engine.background(engine.execute(slow, fast))
    await engine.executor.wait_started(2)
    while not engine.executor.calls[1].finished:
        await asyncio.sleep(0.01)

    engine.at(65)
    gate.set()
    await asyncio.wait_for(worker, WAIT_S)

    assert (await engine.run(fast)).finished_at == at(60)
    assert (await engine.run(slow)).finished_at == at(65)
