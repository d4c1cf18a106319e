"""Async engines for the two supported databases, set up the way the repositories rely on.

SQLite serves one writer at a time: every transaction begins with ``BEGIN
IMMEDIATE``, taking the write lock up front, so a claim's read and its update
cannot interleave with another transaction's. WAL mode lets readers of
committed data proceed meanwhile, and ``busy_timeout`` makes a second writer
wait for the lock instead of failing at once. This is the recipe of the
SQLAlchemy SQLite dialect's documentation ("Enabling Non-Legacy SQLite
Transactional Modes"): the driver's own BEGIN is switched off and
SQLAlchemy's ``begin`` event emits ours. Each SQLite connection also gets a
``casefold(text)`` SQL function, so searches fold case as Python does.

On PostgreSQL, a restarted server closes every pooled connection. A connection
is checked for that as it leaves the pool, without a round trip: asyncpg sees
the server close the socket and marks the connection closed, and a closed one
makes the pool reconnect it and drop every other connection it held from before
(what ``pool_pre_ping`` does, which instead sent ``BEGIN``, an empty query and
``ROLLBACK`` at every checkout: three round trips before each unit of work's
first statement).
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 15_000


def create_engine(url: str, **engine_kwargs: Any) -> AsyncEngine:
    """An engine for ``url`` (``sqlite+aiosqlite://…`` or ``postgresql+asyncpg://…``); connects lazily."""
    if url.startswith("postgresql"):
        # JSONB values (a run's params, task and output) as msgspec decodes them: the same values
        # as json.loads in a fifth of the time (each run read back has at least its params)
        engine_kwargs.setdefault("json_deserializer", msgspec.json.decode)
    engine = create_async_engine(url, **engine_kwargs)
    if engine.dialect.name == "postgresql":
        event.listen(engine.sync_engine, "checkout", _closed_by_server)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _closed_by_server(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """Refuse a pooled connection the server has closed (a restart closes them all): the pool
    reconnects it and invalidates the connections it opened before."""
    if dbapi_connection.driver_connection.is_closed():
        raise exc.InvalidatePoolError("the server closed the connection")


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Take BEGIN away from the driver; _sqlite_begin emits it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
    dbapi_connection.create_function("casefold", 1, _casefold, deterministic=True)


def _casefold(value: str | None) -> str | None:
    return None if value is None else value.casefold()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
