"""PostgreSQL, then Redis, restarted under a running scheduler and worker: both carry on by themselves.

These tests restart the machine's shared servers (other test runs on it see
the blip too), so they are marked ``chaos``, keep each outage to seconds, and
start the server again however the test ends.

Every endpoint's record must stay one unbroken chain of slots (each slot the
previous firing plus the interval, as the governor plans it): the slot that
came due during the outage fires once, afterwards, and nothing is left pending
or running.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest

from domain.endpoints import JobEndpoint
from tests.http_server import StubHttpServer
from tests.integration.engine.conftest import (
    TENANT, Engine, RunRow, ensure_postgres, fired_at, restart_postgres, seconds, start_redis, stop_redis,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.chaos]

INTERVAL = timedelta(seconds=1)


async def endpoints_every_second(engine: Engine, http_server: StubHttpServer) -> list[JobEndpoint]:
    """An HTTP endpoint and four Python ones, every second; half of them allow concurrent runs
    (so no run of theirs waits for another to end before it is dispatched)."""
    url = http_server.route("/beat", json={"ok": True})
    defined = [await engine.define(target={"kind": "http", "url": url})]
    defined += [await engine.define(allow_concurrent=i % 2 == 0) for i in range(4)]
    return defined


def each_has(endpoints: list[JobEndpoint], count: int, *, after: datetime | None = None):
    """Each endpoint has ``count`` succeeded runs (slotted after ``after``, when given)."""

    def done(runs: list[RunRow]) -> bool:
        for endpoint in endpoints:
            ok = [
                r for r in runs
                if r.endpoint_id == endpoint.id and r.status == "succeeded" and (after is None or r.scheduled_at > after)
            ]
            if len(ok) < count:
                return False
        return True

    return done


async def settle(engine: Engine, endpoints: list[JobEndpoint]) -> list[RunRow]:
    """Pause the endpoints and wait for the runs in flight: nothing may stay pending or running."""
    for endpoint in endpoints:
        await engine.endpoints.pause(TENANT, endpoint.id)
    return await engine.runs_until(None, lambda runs: all(r.final for r in runs), timeout=30, what="every run to end")


def assert_unbroken(runs: list[RunRow], endpoints: list[JobEndpoint], *, down: datetime, up: datetime) -> None:
    for endpoint in endpoints:
        mine = [r for r in runs if r.endpoint_id == endpoint.id]
        assert mine[0].scheduled_at == endpoint.next_run_at
        for before, after in zip(mine, mine[1:]):
            assert after.scheduled_at == fired_at(before) + INTERVAL, (endpoint.name, before, after)
        assert {(r.status, r.attempt) for r in mine} == {("succeeded", 1)}, endpoint.name
        # the chain crosses the outage: some run came due before the servers were back and ran after
        assert any(r.scheduled_at < up and r.started_at > down for r in mine), endpoint.name


async def test_scheduler_and_worker_ride_out_a_postgresql_restart(engine: Engine, http_server: StubHttpServer):
    # Given endpoints every second, and a scheduler that sleeps up to 30 s unless PostgreSQL wakes it
    endpoints = await endpoints_every_second(engine, http_server)
    scheduler, = [p for p in await engine.start(scheduler_max_sleep_s=30) if p.name.startswith("scheduler")]
    await engine.runs_until(None, each_has(endpoints, 2), timeout=30, what="two runs of each endpoint")

    # When PostgreSQL restarts (every connection drops)
    down = datetime.now(timezone.utc)
    try:
        await restart_postgres()
    finally:
        await ensure_postgres()
    up = datetime.now(timezone.utc)

    # Then both processes reconnect and carry on
    await engine.runs_until(None, each_has(endpoints, 3, after=up), timeout=60, what="three runs of each after the restart")
    runs = await settle(engine, endpoints)
    assert_unbroken(runs, endpoints, down=down, up=up)
    assert all(p.alive for p in engine.processes)

    # and the scheduler listens again: a new endpoint wakes it from its 30 s sleep
    await asyncio.sleep(2)
    started = time.monotonic()
    newcomer = await engine.define()
    first = await engine.runs_until(newcomer, lambda runs: bool(runs), timeout=30, what="the new endpoint's first run")
    assert first[0].scheduled_at == newcomer.next_run_at
    assert seconds(first[0].created_at - newcomer.created_at) < 10, "the scheduler slept through the new endpoint"
    print(f"PostgreSQL was away {seconds(up - down):.1f}s; the new endpoint fired after {time.monotonic() - started:.1f}s; "
          f"listener reconnect logged: {'listening for wake-ups again' in scheduler.output()}")


async def test_scheduler_and_worker_ride_out_a_redis_restart_that_loses_every_message(
    engine: Engine, http_server: StubHttpServer
):
    # Given endpoints every second, running
    endpoints = await endpoints_every_second(engine, http_server)
    await engine.start()
    await engine.runs_until(None, each_has(endpoints, 2), timeout=30, what="two runs of each endpoint")

    # When Redis shuts down without saving (every queued message is lost) and is away for 3 s
    down = datetime.now(timezone.utc)
    try:
        await stop_redis()
        await asyncio.sleep(3)
    finally:
        await start_redis()
    up = datetime.now(timezone.utc)

    # Then the slots that came due meanwhile run soon after (well before the 60 s re-dispatch of lost messages)
    def caught_up(runs: list[RunRow]) -> bool:
        return all(r.final for r in runs if r.scheduled_at < up) and each_has(endpoints, 3, after=up)(runs)

    await engine.runs_until(None, caught_up, timeout=30, what="the slots due during the outage to run")
    runs = await settle(engine, endpoints)
    assert_unbroken(runs, endpoints, down=down, up=up)
    assert all(p.alive for p in engine.processes)
    print(f"Redis was away {seconds(up - down):.1f}s")
