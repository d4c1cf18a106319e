"""The migrations build exactly the schema the adapter declares, and undo it cleanly."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.tables import metadata
from migrations import runner
from tests.services import POSTGRES_URL, require_postgres


def _admin(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_URL)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database of its own, dropped afterwards."""
    require_postgres()
    name = f"ostinato_migrations_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.replace("postgresql://", "postgresql+asyncpg://", 1).rsplit("/", 1)[0] + "/" + name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


def _inspect(url: str, look: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(look)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _differences(url: str) -> list[Any]:
    def compare(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    return _inspect(url, compare)


def _tables(url: str) -> set[str]:
    return set(_inspect(url, lambda connection: inspect(connection).get_table_names()))


def test_a_migrated_database_matches_the_declared_tables(url: str) -> None:
    runner.upgrade(url, "head")

    assert runner.current(url) == runner.head()
    assert _differences(url) == []


def test_the_comparison_notices_a_schema_that_differs(url: str) -> None:
    # Given a database migrated to head and then changed behind the migrations' back
    runner.upgrade(url, "head")

    def drop_an_index(connection: Any) -> None:
        connection.exec_driver_sql("DROP INDEX ix_runs_running")
        connection.commit()

    _inspect(url, drop_an_index)

    # Then the comparison reports exactly that index
    differences = _differences(url)
    assert [(kind, index.name) for kind, index in differences] == [("add_index", "ix_runs_running")]


def test_downgrading_to_base_leaves_only_the_version_table_and_upgrading_again_works(url: str) -> None:
    runner.upgrade(url, "head")

    runner.downgrade(url, "base")

    assert _tables(url) == {"alembic_version"}
    assert runner.current(url) is None

    runner.upgrade(url, "head")

    assert _tables(url) == {"alembic_version", *metadata.tables}
    assert _differences(url) == []


def test_a_database_never_migrated_has_no_current_revision(url: str) -> None:
    assert runner.current(url) is None


async def test_the_runner_also_works_while_an_event_loop_is_running(sqlite_url: str) -> None:
    runner.upgrade(sqlite_url, "head")

    assert runner.current(sqlite_url) == runner.head()


def test_ostinato_migrate_brings_a_new_sqlite_file_to_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.cli import app

    path = tmp_path / "cli.db"
    monkeypatch.setenv("OSTINATO_DATABASE_URL", f"sqlite+aiosqlite:///{path}")

    outcome = CliRunner().invoke(app, ["migrate"])

    assert outcome.exit_code == 0, outcome.output
    assert "is at head" in outcome.output
    assert runner.current(f"sqlite+aiosqlite:///{path}") == runner.head()
    assert _differences(f"sqlite+aiosqlite:///{path}") == []
