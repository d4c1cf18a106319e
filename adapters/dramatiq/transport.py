"""A broker, its run actors and a dispatcher, built together from a URL."""

from __future__ import annotations

from collections.abc import Sequence

import dramatiq

from adapters.dramatiq.actors import RunActors, RunBatchHandler, create_actors
from adapters.dramatiq.brokers import make_broker
from adapters.dramatiq.dispatcher import DramatiqDispatcher


class DramatiqTransport:
    """Producer and consumer sides of one broker.

    Producers (scheduler, API) use :attr:`dispatcher`. A worker calls
    :meth:`on_runs` with the coroutine that executes a batch, then
    :meth:`worker` to get a Dramatiq worker consuming the run queue. Creating
    a transport opens no connection; the broker connects on first use.
    """

    def __init__(self, url: str, *, batch: int = 100) -> None:
        self.url = url
        self.in_process = not url
        self.broker = make_broker(url)
        dramatiq.set_broker(self.broker)  # middleware that looks up the global broker finds ours
        self._handler: RunBatchHandler | None = None
        self.actors: RunActors = create_actors(self.broker, self._handle)
        self.dispatcher = DramatiqDispatcher(self.actors, batch=batch, in_process=self.in_process)

    def on_runs(self, handler: RunBatchHandler) -> None:
        self._handler = handler

    async def _handle(self, run_ids: Sequence[str], not_before: Sequence[str | None] | None = None) -> None:
        if self._handler is None:
            raise RuntimeError("this process has no worker bound to execute runs")
        await self._handler(run_ids, not_before)

    def worker(self, *, threads: int, timeout_ms: int = 100) -> dramatiq.Worker:
        """A worker for the run queue; ``timeout_ms`` bounds how long an idle consumer waits
        (100 ms keeps enqueue-to-start latency low; Dramatiq's default is 1 s)."""
        return dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=timeout_ms)

    def close(self) -> None:
        self.broker.close()
