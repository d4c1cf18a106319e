"""SQLAlchemy adapters: the storage ports on SQLite (aiosqlite) and PostgreSQL (asyncpg).

SQLAlchemy Core, not the ORM: each repository converts rows to the frozen
domain entities and back in small explicit functions. The schema lives in
:mod:`adapters.sqlalchemy.tables` and is created by ``migrations/``::

    from adapters.sqlalchemy import SqlAlchemyStore

    store = SqlAlchemyStore.from_url("sqlite+aiosqlite:///ostinato.db")
    async with store.unit_of_work() as uow:
        await uow.jobs.add(job)
        await uow.commit()
    await store.dispose()
"""

from adapters.sqlalchemy.store import SqlAlchemyStore
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork

__all__ = ["SqlAlchemyStore", "SqlAlchemyUnitOfWork"]
