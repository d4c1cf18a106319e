"""The scheduler loop fires an endpoint ahead of its slot and sends the run at once, with its slot."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from adapters.memory import MemoryStore
from api.bootstrap import bootstrap
from api.runtime import SchedulerLoop
from api.settings import load_settings
from domain.clock import SystemClock
from tests.builders import TENANT
from tests.engine.fakes import WAIT_S, RecordingDispatcher


class StampingDispatcher(RecordingDispatcher):
    """Notes the wall-clock time each batch was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: list[datetime] = []

    async def dispatch(self, items) -> None:
        await super().dispatch(items)
        self.sent_at.append(datetime.now(timezone.utc))


async def test_the_loop_fires_an_endpoint_ahead_and_sends_its_run_ahead_with_its_slot() -> None:
    dispatcher = StampingDispatcher()
    store = MemoryStore()
    container = bootstrap(
        load_settings(database_url="memory://", scheduler_max_sleep_s=0.2, scheduler_lookahead_ms=300),
        uow=store.unit_of_work, clock=SystemClock(), dispatcher=dispatcher,
    )
    endpoint = await container.endpoints.create(
        TENANT, {"name": "soon", "target": {"kind": "python", "handler": "t.a"}, "schedule": {"interval_s": 3600}},
    )
    slot = datetime.now(timezone.utc) + timedelta(milliseconds=500)
    endpoint = await container.endpoints.set_oneshot_hint(
        TENANT, endpoint.id, {"run_at": slot.isoformat(), "ttl_s": 60, "reason": "a slot half a second out"},
    )
    loop = SchedulerLoop(container, owner="scheduler-test")
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))

    async def sent() -> None:
        while not dispatcher.run_ids:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(sent(), WAIT_S)
    stop.set()
    await asyncio.wait_for(task, WAIT_S)

    [run] = (await container.runs.list(TENANT)).items
    assert dispatcher.run_ids == [run.id]
    assert run.scheduled_at == endpoint.next_run_at
    assert run.created_at >= run.scheduled_at - timedelta(milliseconds=300)  # within the lookahead
    # the loop slept until the slot was half a lookahead away: the run travels that far ahead
    assert run.created_at <= run.scheduled_at - timedelta(milliseconds=150)
    assert dispatcher.sent_at[0] < run.scheduled_at
    assert [i.not_before for i in dispatcher.items] == [run.scheduled_at]  # a worker waits for it
    await container.close()
