"""A unit of work over a :class:`MemoryStore`."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from adapters.memory.audit import MemoryAuditRepository
from adapters.memory.endpoints import MemoryEndpointRepository
from adapters.memory.events import MemoryEventRepository
from adapters.memory.jobs import MemoryJobRepository
from adapters.memory.run_logs import MemoryRunLogRepository
from adapters.memory.runs import MemoryRunRepository
from adapters.memory.store import MemoryStore
from adapters.memory.tokens import MemoryTokenRepository
from adapters.memory.workflow_runs import MemoryWorkflowRunRepository, MemoryWorkflowStepRepository
from adapters.memory.workflows import MemoryWorkflowRepository


class MemoryUnitOfWork:
    """Holds the store's lock for the block; rolls back to the starting state unless committed.

    A ``read_only`` one refuses to commit, and a block that wrote raises as it ends (after
    rolling the writes back), as the SQL adapters refuse the write itself.
    """

    def __init__(self, store: MemoryStore, *, read_only: bool = False) -> None:
        self._store = store
        self.read_only = read_only
        self._snapshot: dict[str, dict] | None = None
        self.jobs = MemoryJobRepository(store)
        self.endpoints = MemoryEndpointRepository(store)
        self.runs = MemoryRunRepository(store)
        self.run_logs = MemoryRunLogRepository(store)
        self.tokens = MemoryTokenRepository(store)
        self.audit = MemoryAuditRepository(store)
        self.workflows = MemoryWorkflowRepository(store)
        self.workflow_runs = MemoryWorkflowRunRepository(store)
        self.workflow_steps = MemoryWorkflowStepRepository(store)
        self.events = MemoryEventRepository(store)

    async def __aenter__(self) -> Self:
        await self._store.acquire()
        self._snapshot = self._store.snapshot()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            wrote = self.read_only and self._snapshot != self._store.snapshot()
            await self.rollback()
            if wrote and exc is None:
                raise RuntimeError("a read-only unit of work does not write")
        finally:
            self._snapshot = None
            self._store.lock.release()

    async def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work does not commit")
        self._snapshot = self._store.snapshot()

    async def rollback(self) -> None:
        if self._snapshot is not None:
            self._store.restore(self._snapshot)
