"""A tick whose send to the broker fails leaves its runs to the very next tick, not to the re-dispatch window.

The scheduler records runs as dispatched in the batch's transaction and sends
them after the commit. When the send fails (the broker is away, and may have
lost what it held), the next tick sends every due pending run again; before,
those runs waited ``redispatch_after`` (60 s) although the scheduler knew
their messages had not left. The Redis restart in ``test_outages.py`` shows
the same in real time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from adapters.sqlalchemy import SqlAlchemyStore
from domain.clock import FixedClock
from domain.errors import InfrastructureError
from domain.execution import DispatchItem
from services.endpoints import EndpointsService
from services.scheduler import SchedulerService
from tests.builders import T0
from tests.integration.engine.conftest import TENANT

pytestmark = [pytest.mark.postgres]


class BrokerAway:
    """Fails the first ``failures`` sends, then keeps what it is sent."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[list[str]] = []

    async def dispatch(self, items: Sequence[DispatchItem]) -> None:
        if self.failures:
            self.failures -= 1
            raise InfrastructureError("could not send runs to the broker: connection refused")
        self.sent.append([item.run_id for item in items])


async def test_runs_whose_send_failed_are_sent_again_on_the_next_tick(engine_database: str):
    store = SqlAlchemyStore.from_url(engine_database)
    try:
        # Given an endpoint due a minute from now, and a scheduler that has ticked once already
        clock = FixedClock(T0)
        endpoint = await EndpointsService(uow=store.unit_of_work, clock=clock).create(TENANT, {
            "name": "hourly", "target": {"kind": "python", "handler": "itest.noop"}, "schedule": {"interval_s": 3600},
        })
        broker = BrokerAway(failures=1)
        scheduler = SchedulerService(
            uow=store.unit_of_work, clock=clock, dispatcher=broker, owner="s", redispatch_after=timedelta(seconds=60)
        )
        clock.advance(timedelta(seconds=1))
        await scheduler.tick()
        # When its slot fires while the broker is away
        clock.set(endpoint.next_run_at)
        with pytest.raises(InfrastructureError):
            await scheduler.tick()

        # Then the next tick, a second later, sends the run
        clock.advance(timedelta(seconds=1))
        report = await scheduler.tick()
        assert report.dispatched == 1
        assert len(broker.sent) == 1 and len(broker.sent[0]) == 1
        # and once sent, it is not sent again before the re-dispatch window
        clock.advance(timedelta(seconds=1))
        assert (await scheduler.tick()).dispatched == 0
    finally:
        await store.dispose()
