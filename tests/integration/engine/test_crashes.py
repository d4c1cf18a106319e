"""SIGKILL a worker mid-run, or a scheduler mid-batch: every slot still ends with exactly one final run.

Workers beat every second here (``OSTINATO_HEARTBEAT_TIMEOUT_S=3``: a third of
it), so the reconciler takes a killed worker's run for dead within seconds.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from domain.runs import slot_key
from tests.integration.engine.conftest import Engine, RunRow, eventually, pg_execute, pg_fetch, seconds

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

HEARTBEAT_TIMEOUT_S = 3


async def test_a_worker_killed_mid_run_has_the_run_expired_and_retried_by_another(engine: Engine):
    # Given two workers, and one slot of a handler that takes 3 s, with two attempts
    workers = await engine.start(workers=2, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)
    endpoint_id = await engine.one_slot_now(
        target={"kind": "python", "handler": "itest.sleep", "params": {"seconds": 3}},
        retry={"max_attempts": 2, "backoff_s": 0.5, "jitter": False},
    )

    # When the worker running it is killed in the middle of the run
    running = await engine.runs_until(
        endpoint_id, lambda runs: bool(runs) and runs[0].status == "running", timeout=30, what="the run to start"
    )
    victim = next(p for p in workers if p.runs_as(running[0].worker_id))
    survivor = next(p for p in workers if p is not victim)
    victim.kill()

    # Then the reconciler expires it, and its retry completes on the other worker
    runs = await engine.runs_until(
        endpoint_id, lambda runs: len(runs) == 2 and all(r.final for r in runs), timeout=60,
        what="the expired run's retry to finish",
    )
    first, retry = runs
    assert (first.attempt, first.source, first.status, first.dead_lettered) == (1, "hint-oneshot", "expired", False)
    assert (retry.attempt, retry.source, retry.status, retry.retry_of) == (2, "retry", "succeeded", first.id)
    assert survivor.runs_as(retry.worker_id)
    # not before its worker had been silent for the heartbeat timeout (a run taken ahead of its
    # slot was last heard of when taken, which may be a little before it started)
    assert seconds(first.finished_at - first.heartbeat_at) >= HEARTBEAT_TIMEOUT_S
    assert seconds(retry.scheduled_at - first.finished_at) >= 0.5
    # and the slot has its one run; the retry has a key of its own
    assert Counter(r.slot for r in runs) == {first.slot: 1, f"retry:{first.id}": 1}
    assert await engine.unfinished() == 0


async def test_a_scheduler_killed_mid_batch_leaves_each_slot_to_fire_exactly_once(engine: Engine):
    # Given 2,000 hourly endpoints, two workers, and a scheduler claiming 50 at a time
    ids = await engine.seed(2000, interval_s=3600, first_at=datetime.now(timezone.utc) + timedelta(days=1))
    engine.worker()
    engine.worker()
    victim = engine.scheduler(scheduler_batch=50)
    await eventually(engine.backends, timeout=30, what="the scheduler to connect")
    for process in engine.processes[:2]:
        await engine.until_logged(process, "consuming from")

    # When all of them come due at once, and the scheduler is killed while it fires them
    due = datetime.now(timezone.utc).replace(microsecond=0)
    await pg_execute(engine.dsn, "UPDATE endpoints SET next_run_at = $1", due)

    async def fired() -> int:
        return (await pg_fetch(engine.dsn, "SELECT count(*) AS n FROM runs"))[0]["n"]

    await eventually(fired, timeout=30, what="the scheduler to fire a first batch", every=0.01)
    victim.kill()
    at_kill = await fired()
    assert at_kill < len(ids), "the scheduler fired everything before it was killed: the test proved nothing"
    # and another scheduler takes over
    engine.scheduler(scheduler_batch=50)

    # Then every endpoint's slot fires exactly once, and every run succeeds
    def all_done(runs: list[RunRow]) -> bool:
        return len(runs) >= len(ids) and all(r.status == "succeeded" for r in runs)

    runs = await engine.runs_until(None, all_done, timeout=120, what="2,000 runs to succeed")
    assert len(runs) == len(ids)
    assert Counter(r.endpoint_id for r in runs) == Counter(ids)
    assert {(r.slot, r.scheduled_at, r.attempt) for r in runs} == {(slot_key(due), due, 1)}
    # and no claim outlived the killed scheduler: every endpoint is planned an hour after its firing
    rows = await pg_fetch(
        engine.dsn,
        "SELECT count(*) FILTER (WHERE claimed_by IS NOT NULL) AS claimed, "
        "count(*) FILTER (WHERE next_run_at <= $1) AS stale FROM endpoints",
        due,
    )
    assert (rows[0]["claimed"], rows[0]["stale"]) == (0, 0)
    print(f"killed the first scheduler after {at_kill} of {len(ids)} slots had fired")
