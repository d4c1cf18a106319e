"""The audit trail in memory."""

from __future__ import annotations

from adapters.memory.store import MemoryStore, paginate
from domain.audit import AuditEntry, AuditQuery
from domain.errors import AlreadyExists
from domain.ids import TenantId
from domain.pagination import Page


class MemoryAuditRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def add(self, entry: AuditEntry) -> None:
        if entry.id in self._store.audit:
            raise AlreadyExists("audit entry", entry.id)
        self._store.audit[entry.id] = entry

    async def list(self, tenant_id: TenantId, query: AuditQuery) -> Page[AuditEntry]:
        mine = (e for e in self._store.audit.values() if e.tenant_id == tenant_id and query.matches(e))
        return paginate(mine, query.page, lambda e: (e.at, e.id))
