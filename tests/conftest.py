"""Fixtures shared by every tier.

``store`` is parametrized over every adapter of the storage ports (memory,
SQLite, PostgreSQL): a contract test that takes it runs three times. Each
test gets an empty store: SQLite copies a migrated template file, PostgreSQL
truncates a database migrated once per session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from domain.clock import FixedClock
from tests.services import POSTGRES_URL, reachable, require_postgres

STORE_KINDS = ["memory", "sqlite", "postgres"]


def asyncpg_url(url: str, database: str | None = None) -> str:
    base = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    if database is None:
        return base
    return base.rsplit("/", 1)[0] + "/" + database


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _run_to_completion(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run`` that also works while a loop runs in this thread (a session fixture
    first requested by an async fixture runs inside that fixture's loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database migrated to head for this session (asyncpg URL); dropped afterwards."""
    require_postgres()
    from migrations.runner import upgrade

    name = f"ostinato_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _run_to_completion(_admin(f'CREATE DATABASE "{name}"'))
    url = asyncpg_url(POSTGRES_URL, name)
    try:
        upgrade(url, "head")
        yield url
    finally:
        _run_to_completion(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to head, copied for each test."""
    from migrations.runner import upgrade

    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}", "head")
    return path


async def _truncate_all(url: str) -> None:
    from adapters.sqlalchemy.tables import metadata
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[object]:
    """An empty store of each kind; ``store.unit_of_work()`` opens a unit of work."""
    kind = request.param
    if kind == "memory":
        from adapters.memory import MemoryStore

        yield MemoryStore()
        return
    from adapters.sqlalchemy import SqlAlchemyStore

    if kind == "sqlite":
        path = tmp_path / "ostinato.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_database")
        await _truncate_all(url)
    sql_store = SqlAlchemyStore.from_url(url)
    try:
        yield sql_store
    finally:
        await sql_store.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc))


def pytest_report_header(config: pytest.Config) -> list[str]:
    from tests.services import CI, REDIS_URL

    return [
        f"ostinato: CI={CI} postgres={'up' if reachable(POSTGRES_URL, 5432) else 'DOWN'} "
        f"redis={'up' if reachable(REDIS_URL, 6379) else 'DOWN'}"
    ]



def _contract_kind(nodeid: str) -> str | None:
    if not nodeid.startswith("tests/contract/") or "[" not in nodeid:
        return None
    ids = nodeid[nodeid.index("[") + 1 : -1].split("-")
    return next((kind for kind in STORE_KINDS if kind in ids), None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show the contract suite's outcomes per adapter, so a run proves all three ran."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            kind = _contract_kind(getattr(report, "nodeid", ""))
            if kind is None or (outcome == "passed" and report.when != "call"):
                continue
            per_kind = counts.setdefault(kind, {})
            per_kind[outcome] = per_kind.get(outcome, 0) + 1
    if not counts:
        return
    terminalreporter.section("contract suite per adapter")
    for kind in STORE_KINDS:
        figures = counts.get(kind, {})
        line = ", ".join(f"{n} {outcome}" for outcome, n in sorted(figures.items()))
        terminalreporter.write_line(f"{kind:>8}: {line or 'not run'}")
