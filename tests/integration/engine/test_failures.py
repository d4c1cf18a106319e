"""Failures, in real time: retries with backoff, timeouts, dead letters and auto-pause.

The endpoints call the test HTTP server, which answers as each test scripts it.
"""

from __future__ import annotations

import asyncio

import pytest

from domain.endpoints import JobEndpoint
from tests.http_server import Reply, StubHttpServer
from tests.integration.engine.conftest import TENANT, Engine, RunRow, eventually, seconds

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def all_final(count: int):
    """All of at least ``count`` runs have ended."""

    def done(runs: list[RunRow]) -> bool:
        return len(runs) >= count and all(r.final for r in runs)

    return done


async def test_a_failing_call_is_retried_with_backoff_until_it_succeeds(engine: Engine, http_server: StubHttpServer):
    # Given an endpoint whose server answers 500 twice, then 200, and three attempts 1 s and 2 s apart
    url = http_server.route("/flaky", Reply(status=500, body="no"), Reply(status=500, body="no"), Reply(status=200, json={}))
    endpoint_id = await engine.one_slot_now(
        target={"kind": "http", "url": url}, retry={"max_attempts": 3, "backoff_s": 1, "jitter": False}
    )
    engine.scheduler()
    engine.worker()

    # When its slot runs
    runs = await engine.runs_until(endpoint_id, all_final(3), timeout=60, what="three attempts")

    # Then it took three attempts, the later two retries of the one before, each after its backoff
    assert [(r.attempt, r.source, r.status) for r in runs] == [
        (1, "hint-oneshot", "failed"), (2, "retry", "failed"), (3, "retry", "succeeded"),
    ]
    assert [r.status_code for r in runs] == [500, 500, 200]
    assert [r.retry_of for r in runs] == [None, runs[0].id, runs[1].id]
    for before, after, backoff in ((runs[0], runs[1], 1), (runs[1], runs[2], 2)):
        assert seconds(after.scheduled_at - before.finished_at) >= backoff
        assert seconds(after.started_at - before.finished_at) >= backoff
    assert not any(r.dead_lettered for r in runs)
    assert http_server.hits("/flaky") == 3
    assert (await engine.endpoint(endpoint_id)).failure_count == 0


async def test_a_call_past_its_timeout_times_out_and_the_last_attempt_is_dead_lettered(
    engine: Engine, http_server: StubHttpServer
):
    # Given an endpoint with a 1 s timeout, two attempts, and a server that answers after 5 s
    url = http_server.route("/slow", delay=5.0, json={})
    endpoint_id = await engine.one_slot_now(
        target={"kind": "http", "url": url}, timeout_s=1,
        retry={"max_attempts": 2, "backoff_s": 0.5, "jitter": False},
    )
    engine.scheduler()
    engine.worker()

    # When its slot runs
    runs = await engine.runs_until(endpoint_id, all_final(2), timeout=60, what="two attempts")

    # Then both attempts timed out, after their timeout and not before
    assert [(r.attempt, r.status) for r in runs] == [(1, "timed_out"), (2, "timed_out")]
    for run in runs:
        assert seconds(run.finished_at - run.started_at) >= 1
        assert "timeout" in run.error
    # and the last one, having used the last attempt, is a dead letter (the first was retried)
    assert [r.dead_lettered for r in runs] == [False, True]
    letters = await engine.runs_service.dead_letters(TENANT)
    assert [r.id for r in letters.items] == [runs[1].id]
    stored = await engine.endpoint(endpoint_id)
    assert stored.failure_count == 1
    assert stored.status == "active"


async def test_an_endpoint_pauses_itself_after_its_consecutive_failures(engine: Engine, http_server: StubHttpServer):
    # Given running processes, and an endpoint every 0.5 s whose server always fails, one attempt
    # per slot, that pauses itself after 3 consecutive failures
    await engine.start()
    url = http_server.route("/down", status=503, body="down")
    endpoint = await engine.define(target={"kind": "http", "url": url}, schedule={"interval_s": 0.5}, auto_pause_after=3)

    # When its slots fail
    async def paused() -> JobEndpoint | None:
        current = await engine.endpoint(endpoint)
        return current if current.status == "paused" else None

    await eventually(paused, timeout=60, what="the endpoint to pause itself")
    runs = await engine.runs_until(endpoint, all_final(3), timeout=30, what="runs in flight to end")

    # Then it paused with nothing planned, after three failed, dead-lettered runs
    stored = await engine.endpoint(endpoint)
    assert stored.next_run_at is None
    assert {(r.status, r.dead_lettered, r.status_code) for r in runs} == {("failed", True, 503)}
    # every one counted (a slot fired before the third failure was recorded still runs, and counts)
    assert stored.failure_count == len(runs)
    third = sorted(runs, key=lambda r: r.finished_at)[2]
    assert all(r.created_at < third.finished_at for r in runs), "a slot fired after the endpoint paused"
    # and nothing more fires
    await asyncio.sleep(2)
    assert len(await engine.runs(endpoint)) == len(runs)
    assert http_server.hits("/down") == len(runs)
