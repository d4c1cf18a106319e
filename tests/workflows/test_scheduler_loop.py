"""The scheduler loop (``ostinato scheduler``) fires workflows' cron triggers as it ticks."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.memory import MemoryStore
from api.bootstrap import bootstrap
from api.runtime import SchedulerLoop
from api.settings import load_settings
from domain.clock import FixedClock
from domain.workflows import TriggerKind
from tests.builders import T0, TENANT
from tests.engine.fakes import RecordingDispatcher


async def test_the_scheduler_loop_fires_a_due_cron_slot_once_and_then_sleeps_until_the_next():
    clock = FixedClock(T0)
    dispatcher = RecordingDispatcher()
    container = bootstrap(
        load_settings(database_url="memory://", scheduler_max_sleep_s=0.2),
        uow=MemoryStore().unit_of_work, clock=clock, dispatcher=dispatcher,
    )
    await container.workflows.create(TENANT, {
        "slug": "every-five", "name": "Every five minutes",
        "steps": [{"key": "a", "target": {"kind": "python", "handler": "t.a"}}],
        "triggers": [{"kind": "cron", "cron": "*/5 * * * *"}],
    })
    clock.set(T0 + timedelta(minutes=5))
    loop = SchedulerLoop(container, owner="scheduler-test")
    stop = asyncio.Event()

    task = asyncio.create_task(loop.run(stop))
    await asyncio.sleep(0.5)  # two or three ticks at most: the loop does not spin on the fired slot
    stop.set()
    await asyncio.wait_for(task, 5)

    [run] = (await container.workflows.runs(TENANT, "every-five")).items
    assert run.trigger is TriggerKind.CRON
    assert len(dispatcher.run_ids) == 1
    assert 1 <= loop.ticks <= 4
    await container.close()
