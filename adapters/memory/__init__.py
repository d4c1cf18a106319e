"""In-memory adapters: dict-backed, product code, and the fixtures users import.

They pass the same contract suite as the SQLAlchemy adapters, so a test
written against them holds against a real database::

    from adapters.memory import MemoryStore

    store = MemoryStore()
    async with store.unit_of_work() as uow:
        await uow.jobs.add(job)
        await uow.commit()

A unit of work holds the store's lock for its whole block (one writer at a
time, like SQLite) and restores the state it began with unless committed.
"""

from adapters.memory.endpoints import MemoryEndpointRepository
from adapters.memory.jobs import MemoryJobRepository
from adapters.memory.runs import MemoryRunRepository
from adapters.memory.store import MemoryStore
from adapters.memory.unit_of_work import MemoryUnitOfWork

__all__ = [
    "MemoryEndpointRepository",
    "MemoryJobRepository",
    "MemoryRunRepository",
    "MemoryStore",
    "MemoryUnitOfWork",
]
