"""Driver errors translated into the domain's: the rest of the product never sees SQLAlchemy's.

Unique and foreign-key violations are recognised by SQLSTATE on PostgreSQL
(23505, 23503) and by extended result code on SQLite; the caller says which
domain error each one means for its statement. Anything that says the
database cannot be reached, is too busy, or gave up on the transaction for a
reason a retry can cure (a deadlock, a serialization failure, a lock held too
long) becomes ``StorageUnavailable``. SQLite reports a bad statement ("no
such table": the database was never migrated) as an operational error too;
that one passes through, because retrying cannot cure it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy import exc as sa_exc

from domain.errors import StorageUnavailable

_UNIQUE = ("23505", "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
_FOREIGN_KEY = ("23503", "SQLITE_CONSTRAINT_FOREIGNKEY")
# SQLSTATE classes: connection exception, transaction rollback (deadlock, serialization),
# insufficient resources, operator intervention (shutdown, cancel); and SQLite's busy/locked.
_TRANSIENT_SQLSTATES = ("08", "40", "53", "57")
_TRANSIENT_PREFIXES = (*_TRANSIENT_SQLSTATES, "SQLITE_BUSY", "SQLITE_LOCKED")


def _code(error: sa_exc.DBAPIError) -> str | None:
    original = error.orig
    return getattr(original, "sqlstate", None) or getattr(original, "sqlite_errorname", None)


def is_unique_violation(error: sa_exc.DBAPIError) -> bool:
    return _code(error) in _UNIQUE


def is_foreign_key_violation(error: sa_exc.DBAPIError) -> bool:
    return _code(error) in _FOREIGN_KEY


def is_transient(error: sa_exc.DBAPIError) -> bool:
    code = _code(error)
    return error.connection_invalidated or (code is not None and code.startswith(_TRANSIENT_PREFIXES))


@contextmanager
def translated(
    *,
    unique: Callable[[], Exception] | None = None,
    foreign_key: Callable[[], Exception] | None = None,
) -> Iterator[None]:
    """Raise ``unique()``/``foreign_key()`` for those violations and ``StorageUnavailable``
    for connection failures, timeouts and locks; other errors pass through unchanged."""
    try:
        yield
    except sa_exc.IntegrityError as error:
        if unique is not None and is_unique_violation(error):
            raise unique() from error
        if foreign_key is not None and is_foreign_key_violation(error):
            raise foreign_key() from error
        raise
    except sa_exc.TimeoutError as error:
        raise StorageUnavailable(f"no database connection free: {error}") from error
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as error:
        if _code(error) == "SQLITE_ERROR":
            raise
        raise StorageUnavailable(f"database unavailable: {_first_line(error)}") from error
    except sa_exc.DBAPIError as error:
        if is_transient(error):
            raise StorageUnavailable(f"database gave up, retry: {_first_line(error)}") from error
        raise
    except (OSError, ConnectionError) as error:
        raise StorageUnavailable(f"database unreachable: {error}") from error


def _first_line(error: BaseException) -> str:
    message = str(getattr(error, "orig", None) or error)
    return message.splitlines()[0] if message else type(error).__name__


@contextmanager
def translated_driver() -> Iterator[None]:
    """:func:`translated` for a statement sent on asyncpg's own connection (no SQLAlchemy around
    it): a lost or refused connection, and the transient SQLSTATE classes, become
    ``StorageUnavailable``; other errors pass through unchanged."""
    try:
        yield
    except asyncpg.PostgresError as error:
        if str(error.sqlstate or "").startswith(_TRANSIENT_SQLSTATES):
            raise StorageUnavailable(f"database gave up, retry: {_first_line(error)}") from error
        raise
    except (asyncpg.InterfaceError, OSError, ConnectionError, TimeoutError) as error:
        raise StorageUnavailable(f"database unavailable: {_first_line(error)}") from error
