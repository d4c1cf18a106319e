"""Run logs in memory."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.memory.store import MemoryStore
from domain.errors import NotFound
from domain.ids import RunId, TenantId
from domain.run_logs import LogLine


class MemoryRunLogRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def append(self, lines: Sequence[LogLine]) -> None:
        for line in lines:
            if line.run_id not in self._store.runs:
                raise NotFound("run", line.run_id)
            self._store.run_logs.setdefault((line.run_id, line.seq), line)

    async def list(self, run_id: RunId, *, tenant_id: TenantId | None) -> Sequence[LogLine]:
        run = self._store.runs.get(run_id)
        if run is None or (tenant_id is not None and run.tenant_id != tenant_id):
            raise NotFound("run", run_id)
        lines = [line for (rid, _), line in self._store.run_logs.items() if rid == run_id]
        return sorted(lines, key=lambda line: line.seq)
