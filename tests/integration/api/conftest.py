"""Fixtures for the HTTP API: an app over the memory store and over PostgreSQL, and tokens.

Every API test runs on both stores (``api_store``): what the API promises
must hold whatever sits behind it. PostgreSQL skips locally when absent and
fails under ``CI=true`` (tests/services.py).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.bootstrap import Container, bootstrap
from api.http import create_app
from api.settings import load_settings
from domain.clock import FixedClock
from domain.execution import DispatchItem
from domain.ids import TenantId
from domain.runs import Run, RunSource
from domain.tokens import Role

T = TypeVar("T")

API_STORES = ["memory", "postgres"]
TENANT = TenantId("acme")
OTHER_TENANT = TenantId("globex")


class RecordingDispatcher:
    """Keeps what it was asked to dispatch; nothing executes."""

    def __init__(self) -> None:
        self.items: list[DispatchItem] = []

    async def dispatch(self, items: Sequence[DispatchItem]) -> None:
        self.items.extend(items)


@pytest.fixture(params=API_STORES)
async def api_store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """An empty store: memory, or a PostgreSQL database migrated by Alembic and truncated."""
    if request.param == "memory":
        from adapters.memory import MemoryStore

        yield MemoryStore()
        return
    from adapters.sqlalchemy import SqlAlchemyStore
    from tests.conftest import _truncate_all

    url = request.getfixturevalue("postgres_database")
    await _truncate_all(url)
    store = SqlAlchemyStore.from_url(url)
    try:
        yield store
    finally:
        await store.dispose()


@pytest.fixture
def container(api_store: Any, clock: FixedClock) -> Container:
    return bootstrap(
        load_settings(database_url="memory://"),
        uow=api_store.unit_of_work,
        clock=clock,
        dispatcher=RecordingDispatcher(),
    )


@pytest.fixture
def app(container: Container) -> Litestar:
    return create_app(container)


@pytest.fixture
async def client(app: Litestar, api_store: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """Litestar's test client. It runs the app on a loop of its own (a blocking portal in another
    thread), so whatever touches the store goes through :func:`in_app`, and the store's connections
    are closed on that loop before it stops."""
    async with AsyncTestClient(app) as test_client:
        yield test_client
        dispose = getattr(api_store, "dispose", None)
        if dispose is not None:
            test_client.blocking_portal.call(dispose)


def in_app(client: AsyncTestClient[Litestar], function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Await ``function(*args, **kwargs)`` on the app's loop (where the store's connections live)."""
    return client.blocking_portal.call(partial(function, *args, **kwargs))


class Tokens:
    """Bearer headers by name: ``admin``, ``operator``, ``viewer`` (tenant acme) and
    ``other_admin``, ``other_viewer`` (tenant globex); ``ids`` holds each token's id."""

    def __init__(self) -> None:
        self.headers: dict[str, dict[str, str]] = {}
        self.ids: dict[str, str] = {}

    def __getitem__(self, name: str) -> dict[str, str]:
        return self.headers[name]


@pytest.fixture
def tokens(client: AsyncTestClient[Litestar], container: Container) -> Tokens:
    found = Tokens()
    for name, tenant, role in [
        ("admin", TENANT, Role.ADMIN),
        ("operator", TENANT, Role.OPERATOR),
        ("viewer", TENANT, Role.VIEWER),
        ("other_admin", OTHER_TENANT, Role.ADMIN),
        ("other_viewer", OTHER_TENANT, Role.VIEWER),
    ]:
        issued = in_app(client, container.tokens.create, tenant, role=role, name=name)
        found.headers[name] = {"Authorization": f"Bearer {issued.secret}"}
        found.ids[name] = issued.token.id
    return found


HTTP_ENDPOINT = {
    "name": "sync-invoices",
    "description": "Pull new invoices from the billing provider.",
    "target": {"kind": "http", "method": "POST", "url": "https://billing.example/sync",
               "headers": {"authorization": "secret://env/BILLING_TOKEN"}, "body": {"full": False}},
    "schedule": {"interval_s": 60},
    "min_interval_s": 10,
    "max_interval_s": 3600,
}


WORKFLOW: dict[str, Any] = {
    "slug": "nightly-billing",
    "name": "Nightly billing",
    "description": "Bill every customer for yesterday's usage, then tell finance.",
    "steps": [
        {"key": "fetch", "description": "download yesterday's usage",
         "target": {"kind": "python", "handler": "billing.fetch"},
         "inputs": {"customer": "$.trigger.customer_id", "day": "yesterday"},
         "retry": {"max_attempts": 3, "backoff_s": 5, "backoff_max_s": 60, "jitter": True}, "timeout_s": 120},
        {"key": "bill", "description": "compute the bills", "target": {"kind": "python", "handler": "billing.compute"},
         "depends_on": ["fetch"], "when": "steps.fetch.output.count > 0",
         "inputs": {"usage": "$.steps.fetch.output.items"}, "on_failure": "skip"},
        {"key": "notify", "description": "post a summary to finance",
         "target": {"kind": "http", "method": "POST", "url": "https://hooks.example.com/finance"},
         "depends_on": ["bill"], "on_failure": "continue"},
    ],
    "triggers": [{"kind": "event", "topic": "usage.imported"}, {"kind": "manual"}],
}


def workflow_definition(**changes: Any) -> dict[str, Any]:
    """:data:`WORKFLOW` with top-level fields replaced (a deep copy: tests may change it)."""
    return {**copy.deepcopy(WORKFLOW), **changes}


def seed_run(
    client: AsyncTestClient[Litestar], container: Container, endpoint: dict[str, Any], *, at_offset_s: float = 0,
    **fields: Any,
) -> Run:
    """Store a pending run of ``endpoint`` (an API answer) scheduled ``at_offset_s`` from now."""
    now = container.clock.now()
    run = Run.scheduled(
        tenant_id=TenantId(fields.pop("tenant_id", TENANT)),
        endpoint_id=endpoint["id"],
        job_id=endpoint["job_id"],
        source=fields.pop("source", RunSource.BASELINE_INTERVAL),
        scheduled_at=now + timedelta(seconds=at_offset_s),
        now=now,
        **fields,
    )

    async def store() -> None:
        async with container.uow() as uow:
            await uow.runs.add(run)
            await uow.commit()

    in_app(client, store)
    return run
