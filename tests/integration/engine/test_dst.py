"""Cron endpoints in Europe/Berlin across both daylight saving changes of 2026, on PostgreSQL.

The real :class:`SchedulerService` ticks over a PostgreSQL store while a
``FixedClock`` steps through each changeover day seven minutes at a time (no
real waiting; seven does not divide 30, so ticks land at every offset from a
slot). What cron means on those days is cronsim's semantics (2.8), which are
Vixie cron's and what ``CronSchedule`` promises:

- **29 March, spring forward**: 02:00 CET jumps to 03:00 CEST, so local
  02:00-02:59 does not exist. ``30 2 * * *`` names a time in the missing hour:
  it fires once, at 03:00 CEST (01:00 UTC), when the hour resumes (not at
  03:30, not skipped). ``0 * * * *`` and ``*/30 * * * *`` name every hour: the
  missing hour simply has no slots, so the 23-hour day has 23 and 46 of them.
- **25 October, fall back**: 03:00 CEST goes back to 02:00 CET, so local
  02:00-02:59 happens twice. ``30 2 * * *`` fires once, at the first 02:30
  (CEST, 00:30 UTC). ``0 * * * *`` and ``*/30 * * * *`` fire in both 02:00
  hours, so the 25-hour day has 25 and 50 slots.

Berlin's offsets are whole hours, so an hourly (half-hourly) expression's
slots are exactly every UTC hour (half hour) of the local day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest

from adapters.sqlalchemy import SqlAlchemyStore
from domain.clock import FixedClock
from domain.execution import DispatchItem
from services.endpoints import EndpointsService
from services.scheduler import SchedulerService
from tests.integration.engine.conftest import RUN_COLUMNS, TENANT, RunRow, dsn, pg_fetch

pytestmark = [pytest.mark.postgres]

UTC = timezone.utc
STEP = timedelta(minutes=7)


class KeepDispatched:
    async def dispatch(self, items: Sequence[DispatchItem]) -> None:
        pass  # nothing executes here: the test reads the slots the scheduler fired


def every(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    moments = []
    while start < end:
        moments.append(start)
        start += step
    return moments


# the local day of each changeover in UTC, [00:00, 24:00) Berlin time, and the daily slots from the
# afternoon before to the morning after
CHANGEOVERS = {
    "spring-forward": (
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC),  # 00:00 CET
        datetime(2026, 3, 29, 22, 0, tzinfo=UTC),  # 24:00 CEST: a 23-hour day
        [
            datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # 03:00 CEST, for the missing 02:30
            datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST the day after
        ],
    ),
    "fall-back": (
        datetime(2026, 10, 24, 22, 0, tzinfo=UTC),  # 00:00 CEST
        datetime(2026, 10, 25, 23, 0, tzinfo=UTC),  # 24:00 CET: a 25-hour day
        [
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # the first 02:30 (CEST); not the second (01:30 UTC)
            datetime(2026, 10, 26, 1, 30, tzinfo=UTC),  # 02:30 CET the day after
        ],
    ),
}


@pytest.mark.parametrize("changeover", list(CHANGEOVERS))
async def test_a_berlin_cron_endpoint_fires_each_slot_of_a_changeover_day_once(engine_database: str, changeover: str):
    day_start, day_end, daily = CHANGEOVERS[changeover]
    # Given three cron endpoints in Europe/Berlin, defined the afternoon before
    clock = FixedClock(day_start - timedelta(hours=10))
    store = SqlAlchemyStore.from_url(engine_database)
    try:
        endpoints = EndpointsService(uow=store.unit_of_work, clock=clock)
        defined = {}
        for name, cron in (("daily-0230", "30 2 * * *"), ("hourly", "0 * * * *"), ("half-hourly", "*/30 * * * *")):
            defined[name] = await endpoints.create(TENANT, {
                "name": name, "target": {"kind": "python", "handler": "itest.noop"},
                "schedule": {"cron": cron, "timezone": "Europe/Berlin"},
            })
        scheduler = SchedulerService(uow=store.unit_of_work, clock=clock, dispatcher=KeepDispatched(), owner="dst")

        # When the scheduler ticks every seven minutes until the morning after
        while clock.now() < day_end + timedelta(hours=10):
            clock.advance(STEP)
            await scheduler.tick()
    finally:
        await store.dispose()

    # Then each slot of the local day fired exactly once, as cron means it
    rows = [RunRow(**dict(r)) for r in await pg_fetch(dsn(engine_database), f"SELECT {RUN_COLUMNS} FROM runs ORDER BY scheduled_at")]
    fired = {name: [r.scheduled_at for r in rows if r.endpoint_id == e.id] for name, e in defined.items()}
    assert fired["daily-0230"] == daily
    in_day = {name: [at for at in moments if day_start <= at < day_end] for name, moments in fired.items()}
    assert in_day["hourly"] == every(day_start, day_end, timedelta(hours=1))
    assert in_day["half-hourly"] == every(day_start, day_end, timedelta(minutes=30))
    assert len(in_day["hourly"]) == (23 if changeover == "spring-forward" else 25)
    # and no slot fired twice, none before its time, each at the first tick after it
    assert [k for k, n in Counter((r.endpoint_id, r.scheduled_at) for r in rows).items() if n > 1] == []
    for run in rows:
        assert (run.source, run.attempt) == ("baseline-cron", 1)
        assert run.scheduled_at <= run.created_at < run.scheduled_at + STEP

