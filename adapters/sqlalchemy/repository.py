"""What the repositories share: the unit of work's connection, error translation, keyset pages."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import JSON, Boolean, ColumnElement, Double, Integer, Row, Select, Table, any_, bindparam, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.base import Executable

from adapters.sqlalchemy.errors import translated, translated_driver
from adapters.sqlalchemy.tables import UtcDateTime
from domain.pagination import Cursor, Page, PageRequest

T = TypeVar("T")

_ASYNCPG = asyncpg_dialect.dialect()

KEPT_TABLES = frozenset({"endpoints", "runs", "workflow_run_steps"})
"""Tables whose rows are never deleted and never change tenant: a row a transaction has read
or stored is remembered with its tenant (``Connected.seen``) instead of being looked up again."""

# PostgreSQL (asyncpg) takes at most 32,767 bind parameters per statement, SQLite 32,766.
MAX_PARAMETERS = 32_000


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), max(size, 1)):
        yield items[start : start + size]


def in_parameter(dialect: str, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column IN :name`` for a statement built once and run with a list bound to ``name``: one
    array on PostgreSQL (``= ANY``), an expanding parameter on SQLite (see ``Repository._in``)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def keyset_page(
    rows: Sequence[Row[Any]], page: PageRequest, to_entity: Callable[[Row[Any]], T],
    key: Callable[[Row[Any]], tuple[Any, Any]],
) -> Page[T]:
    """The page of ``rows`` (up to ``page.limit + 1`` of them, newest first): its entities, and the
    cursor after the last one when the extra row shows there is more; ``key`` gives a row's
    ``(at, id)``."""
    next_cursor = None
    if len(rows) > page.limit:
        next_cursor = Cursor(*key(rows[page.limit - 1])).encode()
    return Page(items=[to_entity(row) for row in rows[: page.limit]], next_cursor=next_cursor)


def _array_type(table: Table, name: str) -> str:
    """The PostgreSQL type of the array that carries column ``name`` in :func:`unnest_update` and
    :func:`unnest_insert` (JSON travels as text and is cast on the way in)."""
    column_type = table.c[name].type
    if isinstance(column_type, UtcDateTime):
        return "timestamptz"
    if isinstance(column_type, JSON):
        return "text"
    if isinstance(column_type, Boolean):
        return "bool"
    if isinstance(column_type, Integer):
        return "int8"
    if isinstance(column_type, Double):
        return "float8"
    return "text"


def _value(table: Table, name: str) -> str:
    """Column ``name``'s value in the unnested row ``v``."""
    return f"v.{name}::jsonb" if isinstance(table.c[name].type, JSON) else f"v.{name}"


def _unnest(table: Table, columns: Sequence[str]) -> str:
    arrays = ", ".join(f"${i}::{_array_type(table, c)}[]" for i, c in enumerate(columns, start=1))
    return f"unnest({arrays}) AS v({', '.join(columns)})"


@functools.lru_cache(maxsize=64)
def unnest_update(table: Table, columns: tuple[str, ...]) -> str:
    """PostgreSQL: one UPDATE of ``columns`` (the first is ``id``) for any number of rows, each
    column's values bound as one array: a statement whose text (and prepared plan) is the same
    for every batch, and a handful of parameters instead of one per value."""
    assignments = ", ".join(f"{c} = {_value(table, c)}" for c in columns[1:])
    return f"UPDATE {table.name} AS t SET {assignments} FROM {_unnest(table, columns)} WHERE t.id = v.id"


@functools.lru_cache(maxsize=64)
def unnest_insert(table: Table, columns: tuple[str, ...], returning: str | None) -> str:
    """PostgreSQL: one INSERT of any number of rows from one array per column, skipping rows that
    hit a unique conflict (see :func:`unnest_update`)."""
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {', '.join(_value(table, c) for c in columns)} "
        f"FROM {_unnest(table, columns)} ON CONFLICT DO NOTHING"
    )
    return statement + (f" RETURNING {returning}" if returning else "")


def column_arrays(table: Table, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> tuple[list[Any], ...]:
    """The values of ``rows`` as one list per column (JSON as text, ``None`` as SQL NULL); refuses
    a naive datetime, as :class:`UtcDateTime` does."""
    arrays = []
    for name in columns:
        values = [row[name] for row in rows]
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            values = [None if v is None else json.dumps(v) for v in values]
        elif isinstance(column_type, UtcDateTime) and any(v is not None and v.utcoffset() is None for v in values):
            raise ValueError(f"refusing to store a naive datetime in {table.name}.{name}")
        arrays.append(values)
    return tuple(arrays)


@functools.lru_cache(maxsize=64)
def driver_statement(statement: Executable) -> tuple[str, tuple[str, ...]]:
    """PostgreSQL: ``statement`` as asyncpg runs it (the text SQLAlchemy would send, with
    ``$n`` placeholders) and the names of its bound parameters in placeholder order."""
    compiled = statement.compile(dialect=_ASYNCPG)
    return str(compiled), tuple(compiled.positiontup or ())


class Connected(Protocol):
    """A unit of work as its repositories see it: the open connection, and whether it may write."""

    read_only: bool

    @property
    def connection(self) -> AsyncConnection: ...

    def seen(self, table: str) -> dict[Any, str]: ...


class Repository:
    def __init__(self, uow: Connected) -> None:
        self._uow = uow

    def _writable(self) -> None:
        if self._uow.read_only:
            raise RuntimeError("a read-only unit of work does not write")

    @property
    def _dialect(self) -> str:
        return self._uow.connection.dialect.name

    async def _execute(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | None = None,
        *,
        unique: Callable[[], Exception] | None = None,
        foreign_key: Callable[[], Exception] | None = None,
    ) -> Result[Any]:
        """Run ``statement`` (with the values of its bound ``parameters``) in the unit of work's
        transaction, with driver errors translated."""
        if statement.is_dml:
            self._writable()
        with translated(unique=unique, foreign_key=foreign_key):
            return await self._uow.connection.execute(statement, parameters)

    async def _read_on_driver(self, statement: Executable, parameters: Mapping[str, Any]) -> Sequence[Any] | None:
        """The rows of the read ``statement``, fetched on asyncpg's own connection (records, read
        by position), when the unit of work is a read-only one on PostgreSQL; ``None`` otherwise,
        for the caller to :meth:`_execute` it.

        The same connection from the same pool, and the same text as SQLAlchemy would send (see
        :func:`driver_statement`); what is skipped is SQLAlchemy's execution around it (context,
        parameter and result processing, a greenlet switch each way), about a fifth of the API's
        CPU time for a page of runs. Only read-only units of work: they run in autocommit
        (no transaction for SQLAlchemy to begin first), and the columns read need no result
        processing on asyncpg (JSON is decoded by the codecs the dialect set on the connection)."""
        if not self._uow.read_only or self._dialect != "postgresql":
            return None
        sql, names = driver_statement(statement)
        pooled = await self._uow.connection.get_raw_connection()
        with translated_driver():
            return await pooled.driver_connection.fetch(sql, *(parameters[name] for name in names))

    async def _execute_many(
        self,
        statement: Executable,
        rows: Sequence[dict[str, Any]],
        *,
        unique: Callable[[], Exception] | None = None,
        foreign_key: Callable[[], Exception] | None = None,
    ) -> None:
        """Run ``statement`` once per row of ``rows`` (executemany, batched by the driver)."""
        if not rows:
            return
        self._writable()
        with translated(unique=unique, foreign_key=foreign_key):
            await self._uow.connection.execute(statement, list(rows))

    def _in(self, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
        """``column IN values``. On PostgreSQL ``column = ANY(:array)``: one bound array, so the
        statement is the same whatever the count (cached and prepared once), where an expanded
        ``IN`` renders a placeholder per value on every execution."""
        values = list(dict.fromkeys(values))
        if self._dialect == "postgresql":
            return column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
        return column.in_(values)

    def _insert_new(self, table: Table, values: dict[str, Any]) -> Executable:
        """An INSERT that stores nothing on a unique conflict (returning no row) instead of failing.

        A failed statement would abort a PostgreSQL transaction; the in-memory
        adapter raises and carries on, so the conflict must not be an error here.
        """
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        return dialect.insert(table).values(values).on_conflict_do_nothing().returning(table.c.id)

    async def _insert_many_new(
        self, table: Table, rows: Sequence[dict[str, Any]], *, returning: ColumnElement[Any] | None = None
    ) -> set[Any]:
        """Insert ``rows``, skipping any that hit a unique conflict (with a stored row or an
        earlier row of the batch); returns the ``returning`` values of the rows stored.
        PostgreSQL: one statement with an array per column (:func:`unnest_insert`); SQLite:
        multi-row statements, split to fit the limit on parameters."""
        if not rows:
            return set()
        self._writable()
        if self._dialect == "postgresql":
            columns = tuple(rows[0])
            statement = unnest_insert(table, columns, None if returning is None else returning.key)
            with translated():
                result = await self._uow.connection.exec_driver_sql(statement, column_arrays(table, rows, columns))
            return set() if returning is None else set(result.scalars())
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        statement = dialect.insert(table).on_conflict_do_nothing()
        # executemany: one cached statement that SQLAlchemy batches into multi-row INSERTs
        # ("insertmanyvalues"), instead of compiling thousands of bound parameters each time
        if returning is None:
            with translated():
                await self._uow.connection.execute(statement, list(rows))
            return set()
        with translated():
            result = await self._uow.connection.execute(statement.returning(returning), list(rows))
        return set(result.scalars())

    async def _update_by_id(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Replace the rows with these ids (the columns given); one statement with an array per
        column on PostgreSQL (:func:`unnest_update`), executemany on SQLite."""
        if not rows:
            return
        self._writable()
        if self._dialect == "postgresql":
            columns = ("id", *(name for name in rows[0] if name != "id"))
            with translated():
                await self._uow.connection.exec_driver_sql(unnest_update(table, columns), column_arrays(table, rows, columns))
            return
        statement = update(table).where(table.c.id == bindparam("where_id"))
        parameters = [{"where_id": row["id"], **{k: v for k, v in row.items() if k != "id"}} for row in rows]
        with translated():
            await self._uow.connection.execute(statement, parameters)

    def _remember(self, table: Table, tenants: Mapping[Any, str]) -> None:
        """Note that rows of ``table`` (one of :data:`KEPT_TABLES`) exist with these tenants, by id."""
        if tenants:
            self._uow.seen(table.name).update(tenants)

    async def _tenants_of(self, table: Table, ids: Collection[Any]) -> dict[Any, str]:
        """The tenant of each stored row among ``ids``; for :data:`KEPT_TABLES`, only the rows
        this transaction has not read or stored yet are looked up."""
        if not ids:
            return {}
        if table.name not in KEPT_TABLES:
            rows = await self._execute(select(table.c.id, table.c.tenant_id).where(self._in(table.c.id, ids)))
            return {row.id: row.tenant_id for row in rows}
        seen = self._uow.seen(table.name)
        found = {key: seen[key] for key in ids if key in seen}
        unseen = [key for key in ids if key not in seen]
        if unseen:
            rows = await self._execute(select(table.c.id, table.c.tenant_id).where(self._in(table.c.id, unseen)))
            looked_up = {row.id: row.tenant_id for row in rows}
            self._remember(table, looked_up)
            found.update(looked_up)
        return found

    def _later(self, value: Any, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """The later of ``value`` and ``column`` (``greatest``; SQLite's two-argument ``max``)."""
        bound = bindparam(None, value, type_=column.type)
        return func.greatest(bound, column) if self._dialect == "postgresql" else func.max(bound, column)

    def _folded(self, column: ColumnElement[str]) -> ColumnElement[str]:
        """``column`` case-folded for case-insensitive search (SQLite: Python's ``str.casefold``)."""
        return func.casefold(column) if self._dialect == "sqlite" else func.lower(column)

    def _fold(self, needle: str) -> str:
        return needle.casefold() if self._dialect == "sqlite" else needle.lower()

    async def _page(
        self,
        statement: Select[Any],
        *,
        at: ColumnElement[Any],
        id: ColumnElement[str],
        page: PageRequest,
        to_entity: Callable[[Row[Any]], T],
    ) -> Page[T]:
        """Keyset pagination, newest first by ``(at, id)``: the ``page.limit`` rows after the cursor."""
        if page.cursor is not None:
            statement = statement.where(tuple_(at, id) < tuple_(page.cursor.at, page.cursor.id, types=[at.type, id.type]))
        statement = statement.order_by(at.desc(), id.desc()).limit(page.limit + 1)
        rows = (await self._execute(statement)).all()
        return keyset_page(rows, page, to_entity, lambda row: (row._mapping[at.key], row._mapping[id.key]))
