"""A unit of work over one database connection."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sqlalchemy.audit import SqlAlchemyAuditRepository
from adapters.sqlalchemy.endpoints import SqlAlchemyEndpointRepository
from adapters.sqlalchemy.errors import translated
from adapters.sqlalchemy.events import SqlAlchemyEventRepository
from adapters.sqlalchemy.jobs import SqlAlchemyJobRepository
from adapters.sqlalchemy.run_logs import SqlAlchemyRunLogRepository
from adapters.sqlalchemy.runs import SqlAlchemyRunRepository
from adapters.sqlalchemy.tokens import SqlAlchemyTokenRepository
from adapters.sqlalchemy.workflow_runs import SqlAlchemyWorkflowRunRepository, SqlAlchemyWorkflowStepRepository
from adapters.sqlalchemy.workflows import SqlAlchemyWorkflowRepository


class SqlAlchemyUnitOfWork:
    """One connection for the block and a transaction that rolls back unless committed.

    The transaction begins with the first statement; after :meth:`commit`,
    the next statement begins a new one, which the end of the block rolls
    back unless it is committed too.

    A ``read_only`` one refuses to commit, and its repositories refuse to
    write: given an engine in autocommit mode (as the store does on PostgreSQL),
    a write would otherwise take effect at once.
    """

    def __init__(self, engine: AsyncEngine, *, read_only: bool = False) -> None:
        self._engine = engine
        self.read_only = read_only
        self._connection: AsyncConnection | None = None
        self._seen: dict[str, dict[Any, str]] = {}
        self._seen_in: object | None = None
        self.jobs = SqlAlchemyJobRepository(self)
        self.endpoints = SqlAlchemyEndpointRepository(self)
        self.runs = SqlAlchemyRunRepository(self)
        self.run_logs = SqlAlchemyRunLogRepository(self)
        self.tokens = SqlAlchemyTokenRepository(self)
        self.audit = SqlAlchemyAuditRepository(self)
        self.workflows = SqlAlchemyWorkflowRepository(self)
        self.workflow_runs = SqlAlchemyWorkflowRunRepository(self)
        self.workflow_steps = SqlAlchemyWorkflowStepRepository(self)
        self.events = SqlAlchemyEventRepository(self)

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("a unit of work is used inside 'async with', not outside it")
        return self._connection

    def seen(self, table: str) -> dict[Any, str]:
        """The tenant of each row of ``table`` this transaction has read or stored, by key.

        Only for tables whose rows are never deleted and never change tenant
        (``repository.KEPT_TABLES``): such a row, once seen, exists with that tenant
        until the transaction ends, so a repository need not look it up again.
        Forgotten when another transaction begins: a rolled-back one may have
        stored rows that do not exist.
        """
        transaction = self.connection.sync_connection.get_transaction()  # type: ignore[union-attr]
        if transaction is None or transaction is not self._seen_in:
            self._seen, self._seen_in = {}, transaction
        return self._seen.setdefault(table, {})

    async def __aenter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("this unit of work is already open")
        with translated():
            self._connection = await self._engine.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self.connection, None
        try:
            if connection.in_transaction():
                with translated():
                    await connection.rollback()
        except Exception:
            if exc is None:
                raise
            # The block's own error says more than a failed rollback on a broken connection.
        finally:
            await connection.close()

    async def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work does not commit")
        with translated():
            await self.connection.commit()

    async def rollback(self) -> None:
        if self.connection.in_transaction():
            with translated():
                await self.connection.rollback()
