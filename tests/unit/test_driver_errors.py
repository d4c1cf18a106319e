"""Errors of statements sent on asyncpg's own connection, translated as SQLAlchemy's are."""

from __future__ import annotations

import asyncpg
import pytest

from adapters.sqlalchemy.errors import translated_driver
from domain.errors import StorageUnavailable


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
        ConnectionResetError("reset by peer"),
        TimeoutError(),
    ],
)
def test_a_lost_or_refused_connection_is_storage_unavailable(error):
    with pytest.raises(StorageUnavailable):
        with translated_driver():
            raise error


def test_a_bad_statement_passes_through():
    with pytest.raises(asyncpg.exceptions.UndefinedTableError):
        with translated_driver():
            raise asyncpg.exceptions.UndefinedTableError('relation "runs" does not exist')
