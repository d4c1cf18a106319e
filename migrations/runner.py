"""Run migrations from Python: ``upgrade``, ``downgrade`` and ``current``, all synchronous.

The Alembic configuration is built in code, so no ``alembic.ini`` is needed
in the working directory. Each call opens its own engine and event loop and
closes both before returning. Called while an event loop is running (from
inside an async test or app), the work moves to a helper thread, because a
loop cannot run a second one in its own thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import NullPool

from adapters.sqlalchemy.engine import create_engine

T = TypeVar("T")

SCRIPT_LOCATION = Path(__file__).resolve().parent


def config(url: str) -> Config:
    """An Alembic configuration for the database at ``url`` (an async SQLAlchemy URL)."""
    alembic_config = Config()
    alembic_config.set_main_option("script_location", str(SCRIPT_LOCATION))
    alembic_config.attributes["url"] = url
    return alembic_config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (default: the newest)."""
    _outside_event_loop(lambda: command.upgrade(config(url), revision))


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` down to ``revision`` (``"base"``: no tables)."""
    _outside_event_loop(lambda: command.downgrade(config(url), revision))


def head() -> str:
    """The newest revision the migrations define."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(config("sqlite://")).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads ({', '.join(heads)}); merge them")
    return heads[0]


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; ``None`` when it was never migrated."""
    return _outside_event_loop(lambda: asyncio.run(_current(url)))


async def _current(url: str) -> str | None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


def _outside_event_loop(work: Callable[[], T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ostinato-migrate") as pool:
        return pool.submit(work).result()
