"""Run logs in the ``run_logs`` table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select

from adapters.sqlalchemy.repository import Repository
from adapters.sqlalchemy.tables import run_logs, runs
from domain.errors import NotFound
from domain.ids import RunId, TenantId
from domain.run_logs import LogLevel, LogLine


def _line_values(line: LogLine) -> dict[str, Any]:
    return {
        "run_id": line.run_id,
        "seq": line.seq,
        "tenant_id": line.tenant_id,
        "at": line.at,
        "level": line.level.value,
        "message": line.message,
    }


def _to_line(row: Row[Any]) -> LogLine:
    return LogLine(
        run_id=RunId(row.run_id),
        tenant_id=TenantId(row.tenant_id),
        seq=row.seq,
        at=row.at,
        level=LogLevel(row.level),
        message=row.message,
    )


class SqlAlchemyRunLogRepository(Repository):
    async def append(self, lines: Sequence[LogLine]) -> None:
        """A line whose ``(run_id, seq)`` is already stored is skipped; the first one stays."""
        if not lines:
            return
        present = await self._tenants_of(runs, {line.run_id for line in lines})
        for line in lines:
            if line.run_id not in present:
                raise NotFound("run", line.run_id)
        await self._insert_many_new(run_logs, [_line_values(line) for line in lines])

    async def list(self, run_id: RunId, *, tenant_id: TenantId | None) -> Sequence[LogLine]:
        owner = (await self._tenants_of(runs, {run_id})).get(run_id)
        if owner is None or (tenant_id is not None and owner != tenant_id):
            raise NotFound("run", run_id)
        statement = select(run_logs).where(run_logs.c.run_id == run_id).order_by(run_logs.c.seq)
        return [_to_line(row) for row in await self._execute(statement)]
