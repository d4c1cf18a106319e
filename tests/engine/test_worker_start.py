"""A worker process is ready before its first run: container built and database reached at start."""

from __future__ import annotations

from adapters.memory import MemoryStore
from api.bootstrap import make_transport
from api.runtime import start_worker
from api.settings import load_settings


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.opened = 0

    def unit_of_work(self, *, read_only: bool = False):
        self.opened += 1
        return super().unit_of_work(read_only=read_only)


def test_a_started_worker_has_built_its_container_and_reached_the_database_before_any_run() -> None:
    settings = load_settings(database_url="memory://", broker_url="", worker_threads=1)
    transport = make_transport(settings)
    store = CountingStore()
    worker, binding = start_worker(settings, transport, uow=store.unit_of_work)
    try:
        assert binding.container is not None
        assert store.opened >= 1
        assert binding.executed == 0
    finally:
        worker.stop()
        transport.close()
