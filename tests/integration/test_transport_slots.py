"""A message carries, per run, the slot it was sent ahead of, to the worker's handler."""

from __future__ import annotations

import asyncio
import queue
from datetime import datetime, timezone

import pytest
import redis

from adapters.dramatiq.dispatcher import message_args
from adapters.dramatiq.transport import DramatiqTransport
from domain.execution import DispatchItem
from tests.services import REDIS_URL, require_redis

SLOT = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def test_a_message_names_slots_only_when_a_run_was_sent_ahead_of_one() -> None:
    assert message_args([DispatchItem(run_id="a"), DispatchItem(run_id="b")]) == (["a", "b"],)
    assert message_args([DispatchItem(run_id="a", not_before=SLOT), DispatchItem(run_id="b")]) == (
        ["a", "b"], [SLOT.isoformat(), None],
    )


@pytest.mark.parametrize("broker", ["in-process", pytest.param("redis", marks=pytest.mark.redis)])
def test_the_worker_gets_each_runs_slot_exactly(broker: str) -> None:
    url = ""
    if broker == "redis":
        require_redis()
        redis.Redis.from_url(REDIS_URL).flushdb()
        url = REDIS_URL
    transport = DramatiqTransport(url)
    received: queue.Queue = queue.Queue()

    async def handler(run_ids, not_before) -> None:
        received.put((list(run_ids), None if not_before is None else list(not_before)))

    transport.on_runs(handler)
    worker = transport.worker(threads=1)
    worker.start()
    try:
        asyncio.run(transport.dispatcher.dispatch([DispatchItem(run_id="a", not_before=SLOT), DispatchItem(run_id="b")]))
        asyncio.run(transport.dispatcher.dispatch([DispatchItem(run_id="c")]))
        got = sorted([received.get(timeout=10), received.get(timeout=10)])
    finally:
        worker.stop()
        transport.close()
    assert got == [(["a", "b"], [SLOT.isoformat(), None]), (["c"], None)]
    assert datetime.fromisoformat(got[0][1][0]) == SLOT  # to the microsecond
