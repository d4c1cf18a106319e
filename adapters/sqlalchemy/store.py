"""The SQLAlchemy store: an engine and the units of work made from it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork


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

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
