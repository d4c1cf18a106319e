"""Two schedulers and two workers, for a minute, over twenty endpoints every 1 to 2 seconds.

``OSTINATO_SOAK_S`` sets the duration in seconds (default 60). Afterwards every
endpoint's record is one unbroken chain of slots: the first at the slot planned
when it was defined, each next one at the previous firing plus the interval
(the governor's rule), none doubled, the last one still planned on the endpoint.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import timedelta

import pytest

from tests.http_server import StubHttpServer
from tests.integration.engine.conftest import Engine, assert_not_early, fired_at, seconds

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SOAK_S = float(os.environ.get("OSTINATO_SOAK_S", "60"))
INTERVALS_S = (1.0, 1.5, 2.0)
ENDPOINTS = 20


async def test_two_schedulers_and_two_workers_fire_every_slot_once(engine: Engine, http_server: StubHttpServer):
    # Given twenty endpoints every 1, 1.5 or 2 s, a few of them calling the test server
    url = http_server.route("/soak", json={"ok": True})
    endpoints = []
    for i in range(ENDPOINTS):
        target = {"kind": "http", "url": url} if i % 5 == 0 else {"kind": "python", "handler": "itest.noop"}
        endpoints.append(await engine.define(target=target, schedule={"interval_s": INTERVALS_S[i % len(INTERVALS_S)]}))
    # and two schedulers and two workers
    await engine.start(schedulers=2, workers=2)

    # When they run for the soak's duration, and the schedulers stop
    await asyncio.sleep(SOAK_S)
    engine.stop(*[p for p in engine.processes if p.name.startswith("scheduler")])
    await engine.runs_until(None, lambda runs: all(r.final for r in runs), timeout=60, what="the last runs to end")

    # Then each endpoint's slots form one chain: none missing, none doubled, none early
    runs = await engine.runs()
    assert runs, "nothing ran"
    assert {r.status for r in runs} == {"succeeded"}
    assert {r.source for r in runs} == {"baseline-interval"}
    slots = Counter((r.endpoint_id, r.scheduled_at) for r in runs)
    assert [slot for slot, n in slots.items() if n > 1] == []
    for endpoint in endpoints:
        interval = timedelta(seconds=endpoint.schedule.interval.total_seconds())
        mine = [r for r in runs if r.endpoint_id == endpoint.id]
        assert mine[0].scheduled_at == endpoint.next_run_at, endpoint.name
        for before, after in zip(mine, mine[1:]):
            assert after.scheduled_at == fired_at(before) + interval, (endpoint.name, before, after)
        for run in mine:
            assert_not_early(run)
        # the slot after the last run is the one the endpoint still has planned (in flight when they stopped)
        stored = await engine.endpoint(endpoint)
        assert stored.next_run_at == fired_at(mine[-1]) + interval, endpoint.name
        # and the endpoint kept up (half its slots in the time: a bound against stalls, not a speed test)
        assert len(mine) >= SOAK_S / interval.total_seconds() / 2, endpoint.name
    # and both workers took part
    assert len({r.worker_id for r in runs}) == 2
    assert http_server.hits("/soak") == sum(1 for r in runs if r.status_code is not None)
    lateness = sorted(seconds(r.started_at - r.scheduled_at) for r in runs)
    print(f"soak: {len(runs)} runs in {SOAK_S:g}s; start lateness p50 {lateness[len(lateness) // 2] * 1000:.0f} ms, "
          f"max {lateness[-1] * 1000:.0f} ms")
