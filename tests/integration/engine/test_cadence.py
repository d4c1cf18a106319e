"""Endpoints fire on their cadence, in real time, through real scheduler and worker processes.

An interval slot is planned from the moment the previous one fired
(``next = now + interval``, DESIGN.md "The governor"): its slot when the
scheduler fired it ahead of time (within its lookahead), the tick's time when
late; so the slot after a run is exactly that run's ``fired_at`` plus the
interval: a test can check every link of that chain, which shows no slot was
skipped or doubled.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from tests.http_server import StubHttpServer
from tests.integration.engine.conftest import TENANT, Engine, RunRow, assert_not_early, eventually, fired_at, seconds

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def assert_chained(runs: list[RunRow], interval: timedelta, *, first_at: datetime | None = None) -> None:
    """Each run's slot is the previous run's firing time plus ``interval``: none skipped, none doubled."""
    if first_at is not None:
        assert runs[0].scheduled_at == first_at
    for before, after in zip(runs, runs[1:]):
        assert after.scheduled_at == fired_at(before) + interval, (before, after)


def assert_on_time(runs: list[RunRow]) -> None:
    """Nothing started before its slot (or fired more than the lookahead ahead of it)."""
    for run in runs:
        assert_not_early(run)


def succeeded(count: int):
    return lambda runs: sum(r.status == "succeeded" for r in runs) >= count


@pytest.mark.slow
async def test_interval_and_cron_endpoints_fire_on_time_with_their_source(engine: Engine, http_server: StubHttpServer):
    # Given an HTTP endpoint every second on the test server, a Python handler every 2 s,
    # and a Python handler on cron every minute
    url = http_server.route("/tick", json={"ok": True})
    web = await engine.define(target={"kind": "http", "method": "POST", "url": url, "body": {"n": 1}}, schedule={"interval_s": 1})
    python = await engine.define(target={"kind": "python", "handler": "itest.stamp"}, schedule={"interval_s": 2})
    cron = await engine.define(target={"kind": "python", "handler": "itest.stamp"}, schedule={"cron": "* * * * *"})
    assert cron.next_run_at is not None and cron.next_run_at.second == 0 and cron.next_run_at.microsecond == 0
    engine.scheduler()
    engine.worker()

    # When the cron endpoint's first slot (the next whole minute) has run
    wait = seconds(cron.next_run_at - datetime.now(timezone.utc)) + 30
    cron_runs = await engine.runs_until(cron, succeeded(1), timeout=wait, what="the cron slot to run")

    # Then every run came at or after its slot, from its own schedule
    assert cron_runs[0].scheduled_at == cron.next_run_at
    assert cron_runs[0].source == "baseline-cron"
    assert (await engine.endpoint(cron)).next_run_at == cron.next_run_at + timedelta(minutes=1)
    web_runs = await engine.runs(web)
    python_runs = await engine.runs(python)
    for runs in (cron_runs, web_runs, python_runs):
        assert_on_time(runs)
    assert {r.source for r in web_runs} == {"baseline-interval"}
    assert {r.source for r in python_runs} == {"baseline-interval"}
    assert_chained(web_runs, timedelta(seconds=1), first_at=web.next_run_at)
    assert_chained(python_runs, timedelta(seconds=2), first_at=python.next_run_at)
    # and each kept its cadence (at least half its slots in the time: a liveness bound, not a speed test)
    elapsed = seconds(web_runs[-1].scheduled_at - web.created_at)
    assert len(web_runs) >= elapsed / 1 / 2
    assert len(python_runs) >= elapsed / 2 / 2
    # and the HTTP endpoint really called the test server, once per finished run
    finished = [r for r in web_runs if r.final]
    assert all(r.status == "succeeded" and r.status_code == 200 for r in finished)
    requests = http_server.requests("/tick")
    assert len(requests) >= len(finished)
    assert requests[0].method == "POST" and requests[0].json == {"n": 1}


async def test_an_interval_hint_changes_the_cadence_and_expires_back_to_the_baseline(engine: Engine):
    # Given an endpoint every 2 s that has run once
    endpoint = await engine.define(schedule={"interval_s": 2})
    engine.scheduler()
    engine.worker()
    await engine.runs_until(endpoint, succeeded(1), timeout=30, what="a first baseline run")

    # When an operator asks for every 0.5 s for 3 s
    hinted = await engine.endpoints.set_interval_hint(TENANT, endpoint.id, {"interval_s": 0.5, "ttl_s": 3, "reason": "busy"})
    assert hinted.next_run_source == "hint-interval"
    expires = hinted.interval_hint.expires_at

    # Then runs follow the hint until it expires, and the baseline after it
    def two_baseline_runs_after_expiry(runs: list[RunRow]) -> bool:
        return sum(r.source == "baseline-interval" and r.scheduled_at > expires for r in runs) >= 2

    runs = await engine.runs_until(endpoint, two_baseline_runs_after_expiry, timeout=40, what="the baseline to come back")
    assert_on_time(runs)
    hinted_runs = [r for r in runs if r.source == "hint-interval"]
    assert len(hinted_runs) >= 3
    assert hinted_runs[0].scheduled_at == hinted.next_run_at
    assert_chained(hinted_runs, timedelta(milliseconds=500))
    # a hinted slot was planned while the hint was live
    assert all(r.scheduled_at < expires + timedelta(milliseconds=500) for r in hinted_runs)
    after = [r for r in runs if r.scheduled_at > hinted_runs[-1].scheduled_at]
    assert [r.source for r in after][:2] == ["baseline-interval", "baseline-interval"]
    assert after[0].scheduled_at == fired_at(hinted_runs[-1]) + timedelta(seconds=2)
    assert fired_at(hinted_runs[-1]) >= expires  # the firing that planned the baseline again saw the hint expired
    assert_chained(after, timedelta(seconds=2))
    # and the expired hint was cleared from the endpoint
    stored = await engine.endpoint(endpoint)
    assert stored.interval_hint is None
    assert stored.next_run_source == "baseline-interval"


async def test_a_paused_endpoint_fires_nothing_until_it_is_resumed(engine: Engine):
    # Given an endpoint every second that has run twice
    endpoint = await engine.define(schedule={"interval_s": 1})
    engine.scheduler()
    engine.worker()
    await engine.runs_until(endpoint, succeeded(2), timeout=30, what="two runs")

    # When it is paused
    paused = await engine.endpoints.pause(TENANT, endpoint.id)
    assert paused.next_run_at is None
    # Then nothing fires for three of its intervals
    await engine.runs_until(None, lambda runs: all(r.final for r in runs), timeout=20, what="runs in flight to end")
    before = await engine.runs(endpoint)
    await asyncio.sleep(3)
    during = await engine.runs(endpoint)
    assert during == before
    assert all(r.created_at <= paused.updated_at for r in during)

    # When it is resumed, it fires again from its new plan
    resumed = await engine.endpoints.resume(TENANT, endpoint.id)
    runs = await engine.runs_until(
        endpoint, lambda runs: sum(r.scheduled_at >= resumed.updated_at and r.status == "succeeded" for r in runs) >= 2,
        timeout=30, what="two runs after resuming",
    )
    later = [r for r in runs if r.scheduled_at >= resumed.updated_at]
    assert later[0].scheduled_at == resumed.next_run_at
    assert_chained(later, timedelta(seconds=1))
    assert_on_time(runs)


async def test_a_schedule_change_takes_effect_at_once_without_a_restart(engine: Engine):
    # Given an endpoint every 30 s, and a scheduler allowed to sleep until its next slot
    # (so only the PostgreSQL wake-up can make it notice a change sooner)
    endpoint = await engine.define(schedule={"interval_s": 30})
    scheduler = engine.scheduler(scheduler_max_sleep_s=60)
    engine.worker()
    await eventually(engine.backends, timeout=20, what="the scheduler to connect")
    await asyncio.sleep(2)  # its first tick is done: it sleeps until the old slot, 30 s out
    assert scheduler.alive

    # When the schedule is changed to every second through the endpoints service
    changed = await engine.endpoints.update(TENANT, endpoint.id, {"schedule": {"interval_s": 1}})
    assert changed.next_run_at <= changed.updated_at + timedelta(seconds=1)

    # Then the new cadence shows well within the old interval: the scheduler planned again at once
    runs = await engine.runs_until(endpoint, succeeded(3), timeout=25, what="three runs at the new cadence")
    assert runs[0].scheduled_at == changed.next_run_at
    assert seconds(runs[0].created_at - changed.updated_at) < 10, "the scheduler slept through the change"
    assert seconds(runs[2].created_at - changed.updated_at) < 15
    assert_chained(runs, timedelta(seconds=1))
    assert_on_time(runs)
