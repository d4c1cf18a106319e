"""The audit trail in the ``audit_entries`` table; rows are only ever inserted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select

from adapters.sqlalchemy.repository import Repository
from adapters.sqlalchemy.tables import audit_entries
from domain.audit import AuditEntry, AuditId, AuditQuery
from domain.errors import AlreadyExists
from domain.ids import TenantId
from domain.pagination import Page


def _entry_values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "tenant_id": entry.tenant_id,
        "token_id": entry.token_id,
        "action": entry.action,
        "target_kind": entry.target_kind,
        "target_id": entry.target_id,
        "summary": dict(entry.summary),
        "at": entry.at,
    }


def _to_entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=AuditId(row.id),
        tenant_id=TenantId(row.tenant_id),
        token_id=row.token_id,
        action=row.action,
        target_kind=row.target_kind,
        target_id=row.target_id,
        summary=dict(row.summary),
        at=row.at,
    )


class SqlAlchemyAuditRepository(Repository):
    async def add(self, entry: AuditEntry) -> None:
        stored = await self._execute(
            self._insert_new(audit_entries, _entry_values(entry)), unique=lambda: AlreadyExists("audit entry", entry.id)
        )
        if stored.first() is None:
            raise AlreadyExists("audit entry", entry.id)

    async def list(self, tenant_id: TenantId, query: AuditQuery) -> Page[AuditEntry]:
        """The filters of :meth:`AuditQuery.matches`, in SQL. A ``prefix.*`` action compares
        the leading characters exactly (``LIKE`` would ignore case on SQLite)."""
        c = audit_entries.c
        statement = select(audit_entries).where(c.tenant_id == tenant_id)
        if query.action is not None:
            if query.action.endswith(".*"):
                prefix = query.action[:-1]
                statement = statement.where(func.substr(c.action, 1, len(prefix)) == prefix)
            else:
                statement = statement.where(c.action == query.action)
        if query.target_kind is not None:
            statement = statement.where(c.target_kind == query.target_kind)
        if query.target_id is not None:
            statement = statement.where(c.target_id == query.target_id)
        if query.token_id is not None:
            statement = statement.where(c.token_id == query.token_id)
        if query.since is not None:
            statement = statement.where(c.at >= query.since)
        if query.until is not None:
            statement = statement.where(c.at < query.until)
        return await self._page(statement, at=c.at, id=c.id, page=query.page, to_entity=_to_entry)
