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

PostgreSQL connections are checked as the pool hands them out
(:func:`_check_out`), without a round trip: asyncpg sees the server close the
socket (a restart closes them all) and marks the connection closed; a closed
one makes the pool reconnect it and drop every other connection it held from
before. One idle for more than :data:`PING_AFTER_IDLE_S` is pinged first (its
close may have gone unnoticed). SQLAlchemy's ``pool_pre_ping`` pinged every
checkout instead: three round trips (BEGIN, an empty query, ROLLBACK) before
each unit of work's first statement.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 15_000
PING_AFTER_IDLE_S = 1.0
"""A pooled PostgreSQL connection idle for longer is pinged before it is handed out: its close may
have gone unnoticed (no event loop read its socket, or the network dropped it silently)."""
_CHECKED_IN_AT = "ostinato_checked_in_at"


def create_engine(url: str, **engine_kwargs: Any) -> AsyncEngine:
    """An engine for ``url`` (``sqlite+aiosqlite://…`` or ``postgresql+asyncpg://…``); connects lazily."""
    if url.startswith("postgresql"):
        # JSONB values (a run's params, task and output) as msgspec decodes them: the same values
        # as json.loads in a fifth of the time (each run read back has at least its params)
        engine_kwargs.setdefault("json_deserializer", msgspec.json.decode)
    engine = create_async_engine(url, **engine_kwargs)
    if engine.dialect.name == "postgresql" and not engine_kwargs.get("pool_pre_ping"):
        # a restarted server leaves dead connections in the pool: replace them as they are checked out
        event.listen(engine.sync_engine, "checkout", _check_out)
        event.listen(engine.sync_engine, "checkin", _checked_in)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _check_out(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """Refuse a pooled connection the server has closed, and ping one that sat idle for more than
    :data:`PING_AFTER_IDLE_S`; the pool replaces a refused connection with a new one.

    A restart closes the server's end of every connection, which the event
    loop the pool's connections belong to notices at once (asyncpg marks the
    connection closed): no round trip is needed to tell. A connection in
    constant use is not pinged; a statement on a connection that fails anyway
    raises an ``InfrastructureError``, which the engine retries.
    """
    if dbapi_connection.driver_connection.is_closed():
        # as a failed ping does: reconnect, and drop the connections opened before (a restart)
        raise exc.InvalidatePoolError("the server closed the connection")
    checked_in_at = connection_record.info.get(_CHECKED_IN_AT)
    if checked_in_at is None or time.monotonic() - checked_in_at <= PING_AFTER_IDLE_S:
        return  # new, or in use a moment ago
    try:
        dbapi_connection.ping()
    except Exception as error:
        raise exc.DisconnectionError(f"a pooled connection idle for a while failed its ping: {error}") from error


def _checked_in(dbapi_connection: Any, connection_record: Any) -> None:
    connection_record.info[_CHECKED_IN_AT] = time.monotonic()


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
