"""The SQLAlchemy store: an engine and the units of work made from it."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork

log = logging.getLogger("ostinato")

FILL_POOL_TIMEOUT_S = 10.0
"""Longest a process waits at start for its pool's connections (a server that does not answer)."""


class SqlAlchemyStore:
    """Owns the engine (and so the connection pool); nothing connects before a unit of work runs.

    The schema comes from ``migrations`` (``ostinato migrate``), never from here.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # read-only units of work on PostgreSQL: the same pool, no transaction (no BEGIN/ROLLBACK)
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine

    @classmethod
    def from_url(cls, url: str, **engine_kwargs: Any) -> SqlAlchemyStore:
        """A store on ``sqlite+aiosqlite:///file.db`` or ``postgresql+asyncpg://…``;
        ``engine_kwargs`` go to ``create_async_engine`` (``pool_size``, ``echo``…)."""
        return cls(create_engine(url, **engine_kwargs))

    def unit_of_work(self, *, read_only: bool = False) -> SqlAlchemyUnitOfWork:
        """A unit of work; a ``read_only`` one reads outside a transaction on PostgreSQL (each
        statement on its own) and in a transaction on SQLite."""
        if read_only:
            return SqlAlchemyUnitOfWork(self._reader, read_only=True)
        return SqlAlchemyUnitOfWork(self.engine)

    async def fill_pool(self) -> int:
        """Open the pool's connections now (PostgreSQL), so the first requests that need them do
        not each wait for one to be opened; return how many the pool holds. A server that cannot
        be reached leaves the pool to fill as connections are needed (logged, not raised)."""
        if self.engine.dialect.name != "postgresql":
            return 0
        size = self.engine.pool.size()
        try:
            async with asyncio.timeout(FILL_POOL_TIMEOUT_S), AsyncExitStack() as held:
                for _ in range(size):  # held together, so each is a connection of its own
                    await held.enter_async_context(self.engine.connect())
        except (SQLAlchemyError, OSError) as error:  # (TimeoutError included) requests connect later
            log.warning("could not open the database pool's %d connections ahead: %r", size, error)
        return self.engine.pool.checkedin()

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
