"""The actors that carry runs: each message holds a batch of run ids, never objects.

Three priority bands map endpoint priority (0 lowest … 9 highest) to
Dramatiq's actor priority, which orders the messages a worker has fetched;
on RabbitMQ the message also carries ``broker_priority`` so the broker
itself delivers urgent runs first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import dramatiq
from attrs import frozen

QUEUE = "ostinato"
# An actor may run up to the longest run timeout (24 h) plus slack; Dramatiq's default is 10 min.
TIME_LIMIT_MS = 25 * 3600 * 1000
# Infrastructure errors (database away) are retried by Dramatiq; the run itself stays in the database.
MAX_RETRIES = 20

RunBatchHandler = Callable[[Sequence[str], Sequence[str | None] | None], Awaitable[None]]
"""Executes a message's runs: their ids and, when sent ahead of their slots, each one's slot
(ISO 8601) or ``None``."""


@frozen
class RunActors:
    high: dramatiq.Actor
    normal: dramatiq.Actor
    low: dramatiq.Actor

    def for_priority(self, priority: int) -> dramatiq.Actor:
        if priority >= 7:
            return self.high
        if priority >= 3:
            return self.normal
        return self.low


def create_actors(broker: dramatiq.Broker, handler: RunBatchHandler) -> RunActors:
    """Declare the run actors on ``broker``; each calls ``handler(run_ids, not_before)``."""

    async def execute_runs(run_ids: list[str], not_before: list[str | None] | None = None) -> None:
        await handler(run_ids, not_before)

    def declare(name: str, priority: int) -> dramatiq.Actor:
        return dramatiq.actor(
            execute_runs,
            broker=broker,
            actor_name=name,
            queue_name=QUEUE,
            priority=priority,
            time_limit=TIME_LIMIT_MS,
            max_retries=MAX_RETRIES,
            min_backoff=500,
            max_backoff=30_000,
        )

    return RunActors(
        high=declare("ostinato.execute_runs.high", 0),
        normal=declare("ostinato.execute_runs", 10),
        low=declare("ostinato.execute_runs.low", 20),
    )
