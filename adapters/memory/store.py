"""The state behind the in-memory adapters."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from attrs import define, field, fields

from domain.audit import AuditEntry, AuditId
from domain.endpoints import JobEndpoint
from domain.events import Event, EventId
from domain.ids import EndpointId, JobId, RunId, TenantId
from domain.jobs import Job
from domain.pagination import Cursor, Page, PageRequest
from domain.run_logs import LogLine
from domain.runs import Run
from domain.tokens import ApiToken, TokenId
from domain.workflow_triggers import CronTrigger
from domain.workflows import Workflow, WorkflowId, WorkflowRun, WorkflowRunId, WorkflowRunStep

if TYPE_CHECKING:
    from adapters.memory.unit_of_work import MemoryUnitOfWork

T = TypeVar("T")


@define
class MemoryStore:
    """Dicts of entities keyed by id, shared by every unit of work made from this store."""

    jobs: dict[JobId, Job] = field(factory=dict)
    endpoints: dict[EndpointId, JobEndpoint] = field(factory=dict)
    runs: dict[RunId, Run] = field(factory=dict)
    run_logs: dict[tuple[RunId, int], LogLine] = field(factory=dict)
    tokens: dict[TokenId, ApiToken] = field(factory=dict)
    audit: dict[AuditId, AuditEntry] = field(factory=dict)
    workflow_versions: dict[tuple[WorkflowId, int], Workflow] = field(factory=dict)
    workflow_heads: dict[WorkflowId, Workflow] = field(factory=dict)
    cron_triggers: dict[str, CronTrigger] = field(factory=dict)
    workflow_runs: dict[WorkflowRunId, WorkflowRun] = field(factory=dict)
    workflow_steps: dict[tuple[WorkflowRunId, str], WorkflowRunStep] = field(factory=dict)
    events: dict[EventId, Event] = field(factory=dict)
    event_seqs: dict[TenantId, int] = field(factory=dict)
    lock: threading.Lock = field(factory=threading.Lock)

    async def acquire(self) -> None:
        """Take the store's lock without blocking the event loop; works across threads and loops
        (``ostinato serve`` on ``memory://`` shares one store between the API and worker loops)."""
        delay = 0.0002
        while not self.lock.acquire(blocking=False):  # polling keeps a cancelled waiter from taking it later
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.01)

    def unit_of_work(self, *, read_only: bool = False) -> MemoryUnitOfWork:
        from adapters.memory.unit_of_work import MemoryUnitOfWork

        return MemoryUnitOfWork(self, read_only=read_only)

    def _tables(self) -> list[str]:
        """Every dict-valued field: the store's "tables"."""
        return [f.name for f in fields(type(self)) if f.name != "lock"]

    def snapshot(self) -> dict[str, dict]:
        """Shallow copies of every table (entities are frozen, so that is a full copy)."""
        return {name: dict(getattr(self, name)) for name in self._tables()}

    def restore(self, snapshot: dict[str, dict]) -> None:
        for name, table in snapshot.items():
            setattr(self, name, dict(table))


def paginate(items: Iterable[T], page: PageRequest, key: Callable[[T], tuple[datetime, str]]) -> Page[T]:
    """Newest first by ``key``; the items strictly after ``page.cursor``."""
    ordered = sorted(items, key=key, reverse=True)
    if page.cursor is not None:
        mark = (page.cursor.at, page.cursor.id)
        ordered = [item for item in ordered if key(item) < mark]
    chosen = ordered[: page.limit]
    next_cursor = None
    if len(ordered) > page.limit:
        at, item_id = key(chosen[-1])
        next_cursor = Cursor(at, item_id).encode()
    return Page(items=chosen, next_cursor=next_cursor)
