"""/healthz answers while the process runs; /readyz answers 200 only while the database does."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from adapters.memory import MemoryStore
from api.bootstrap import bootstrap
from api.http import create_app
from api.settings import load_settings
from domain.errors import StorageUnavailable
from tests.integration.api.conftest import RecordingDispatcher


async def test_healthz_says_alive(client):
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


async def test_readyz_checks_the_database(client):
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": {"ok": True, "error": None}}}


async def test_readyz_answers_503_while_the_database_is_away_without_its_details():
    store = MemoryStore()
    down = {"now": True}

    class Unreachable:
        async def __aenter__(self) -> Any:
            raise StorageUnavailable("could not connect to 10.0.0.7:5432 as ostinato")

        async def __aexit__(self, *args: Any) -> None:  # pragma: no cover - never entered
            return None

    def unit_of_work(*, read_only: bool = False) -> Any:
        return Unreachable() if down["now"] else store.unit_of_work(read_only=read_only)

    container = bootstrap(load_settings(database_url="memory://"), uow=unit_of_work, dispatcher=RecordingDispatcher())
    async with AsyncTestClient(create_app(container)) as client:
        away = await client.get("/readyz")
        alive = await client.get("/healthz")
        down["now"] = False
        back = await client.get("/readyz")

    assert away.status_code == 503
    assert away.json() == {"status": "unavailable", "checks": {"database": {"ok": False, "error": "StorageUnavailable"}}}
    assert "10.0.0.7" not in away.text
    assert alive.status_code == 200
    assert back.status_code == 200
