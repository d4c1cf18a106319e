"""Alembic's environment: runs the versions on the async engine the application uses.

The database URL comes, first found, from ``config.attributes["url"]`` (set
by :mod:`migrations.runner`), ``-x url=…`` on the ``alembic`` command line,
``sqlalchemy.url`` in the ini file, or ``OSTINATO_DATABASE_URL``.

SQLite gets ``render_as_batch`` (it cannot alter most columns in place) and,
because our engine begins every transaction itself (``BEGIN IMMEDIATE``),
transactional DDL: a failed upgrade leaves the schema as it was.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.tables import metadata

config = context.config


def _url() -> str:
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("OSTINATO_DATABASE_URL")
    )
    if not url:
        raise SystemExit("no database URL: pass -x url=… or set OSTINATO_DATABASE_URL")
    return url


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade head --sql``)."""
    url = _url()
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=sqlite,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
