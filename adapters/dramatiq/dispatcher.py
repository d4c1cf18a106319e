"""The ``Dispatcher`` port over Dramatiq: batches of run ids per message.

A message is ``(run_ids,)``, or ``(run_ids, not_before)`` when some of its runs
were sent ahead of their slot: ``not_before`` holds, per run, its slot as an
ISO 8601 string (exact to the microsecond, unlike a float) or ``None``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from adapters.dramatiq.actors import RunActors
from adapters.dramatiq.brokers import supports_broker_priority
from domain.errors import InfrastructureError
from domain.execution import DispatchItem

BATCH = 100


class DramatiqDispatcher:
    """Sends up to ``batch`` run ids per message, grouped by priority.

    Sending is blocking network I/O for Redis and RabbitMQ, so it runs in a
    thread; the in-process stub broker is sent to directly.
    """

    def __init__(self, actors: RunActors, *, batch: int = BATCH, in_process: bool = False) -> None:
        self._actors = actors
        self._batch = batch
        self._in_process = in_process
        self._broker_priority = supports_broker_priority(actors.normal.broker)

    async def dispatch(self, items: Sequence[DispatchItem]) -> None:
        if not items:
            return
        if self._in_process:
            self._send(items)
            return
        try:
            await asyncio.to_thread(self._send, items)
        except Exception as exc:  # broker away: the reconciler dispatches again later
            raise InfrastructureError(f"could not send runs to the broker: {exc}") from exc

    def _send(self, items: Sequence[DispatchItem]) -> None:
        by_priority: dict[int, list[DispatchItem]] = defaultdict(list)
        for item in items:
            by_priority[item.priority].append(item)
        for priority in sorted(by_priority, reverse=True):
            group = by_priority[priority]
            actor = self._actors.for_priority(priority)
            options = {"broker_priority": priority} if self._broker_priority else {}
            for start in range(0, len(group), self._batch):
                actor.send_with_options(args=message_args(group[start : start + self._batch]), **options)


def message_args(items: Sequence[DispatchItem]) -> tuple:
    """A message's arguments: the run ids, and their slots when any was sent ahead of it."""
    run_ids = [item.run_id for item in items]
    if all(item.not_before is None for item in items):
        return (run_ids,)
    return (run_ids, [None if item.not_before is None else item.not_before.isoformat() for item in items])
