"""Workflows as they run in production: ``ostinato worker`` and ``ostinato scheduler`` processes on a
fresh PostgreSQL database and Redis database :data:`REDIS_DB`, driven through the product's services.

The engine's integration harness (``tests/integration/engine/conftest.py``) starts and watches the
processes; this adds a ``WorkflowsService`` whose dispatcher sends to the same Redis database.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine.conftest import Engine, engine_database  # noqa: F401  (the fixture)
from tests.services import require_redis

REDIS_DB = 12
REDIS_URL = os.environ.get("OSTINATO_TEST_WORKFLOW_REDIS_URL", f"redis://127.0.0.1:6379/{REDIS_DB}")
HANDLERS = "tests.integration.workflows.handlers"


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


class WorkflowEngine(Engine):
    """The engine's processes, with workflows: :attr:`workflows` starts runs whose first steps
    go to the workers through Redis."""

    def __init__(self, url: str, broker_url: str, logs: Path) -> None:
        super().__init__(url, broker_url, logs)
        from adapters.dramatiq import DramatiqTransport
        from services.workflows import WorkflowsService

        # small messages, so that the steps a test starts at once spread over the workers
        self.transport = DramatiqTransport(broker_url, batch=4)
        self.workflows = WorkflowsService(uow=self.store.unit_of_work, clock=self.clock, dispatcher=self.transport.dispatcher)

    def env(self, **settings: Any) -> dict[str, str]:
        settings.setdefault("handler_modules", HANDLERS)
        return super().env(**settings)

    async def close(self) -> None:
        await super().close()
        self.transport.close()


@pytest.fixture
async def engine(request: pytest.FixtureRequest, engine_database: str, tmp_path: Path) -> AsyncIterator[WorkflowEngine]:  # noqa: F811
    require_redis()
    flush_redis()
    logs = tmp_path / "logs"
    logs.mkdir()
    instance = WorkflowEngine(engine_database, REDIS_URL, logs)
    request.node.ostinato_engine = instance
    try:
        yield instance
    finally:
        await asyncio.to_thread(instance.stop)
        await instance.store.dispose()
        instance.transport.close()
        flush_redis()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[Any]:
    report = yield
    engine_instance = getattr(item, "ostinato_engine", None)
    if engine_instance is not None and report.failed and report.when == "call":
        report.sections.append(("ostinato processes", engine_instance.report()))
    return report
