"""The composition root: the only place that chooses adapters.

``bootstrap(settings)`` builds a :class:`Container` from settings; tests pass
overrides (``bootstrap(settings, uow=store.unit_of_work, clock=clock)``)
instead of patching. Nothing connects until a unit of work is used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from attrs import define, field

from api.settings import Settings, load_settings
from domain.clock import SystemClock
from domain.ports import Clock, UnitOfWorkFactory
from services import EndpointsService, JobsService, RunsService


@define
class Container:
    """Everything a driving adapter needs, built once per process."""

    settings: Settings
    clock: Clock
    uow: UnitOfWorkFactory
    jobs: JobsService
    endpoints: EndpointsService
    runs: RunsService
    closers: list[Callable[[], Awaitable[None]]] = field(factory=list)

    async def close(self) -> None:
        """Release connections (engine pools) in reverse order of creation."""
        while self.closers:
            await self.closers.pop()()


def bootstrap(settings: Settings | None = None, **overrides: Any) -> Container:
    """Build the container; ``overrides`` replace ``clock`` or ``uow`` (and later adapters)."""
    settings = settings or load_settings()
    clock: Clock = overrides.pop("clock", None) or SystemClock()
    closers: list[Callable[[], Awaitable[None]]] = []
    uow: UnitOfWorkFactory | None = overrides.pop("uow", None)
    if uow is None:
        uow, closer = _storage(settings)
        if closer is not None:
            closers.append(closer)
    if overrides:
        raise TypeError(f"unknown overrides: {', '.join(sorted(overrides))}")
    return Container(
        settings=settings,
        clock=clock,
        uow=uow,
        jobs=JobsService(uow=uow, clock=clock),
        endpoints=EndpointsService(uow=uow, clock=clock),
        runs=RunsService(uow=uow, clock=clock),
        closers=closers,
    )


def _storage(settings: Settings) -> tuple[UnitOfWorkFactory, Callable[[], Awaitable[None]] | None]:
    if settings.database_kind == "memory":
        from adapters.memory import MemoryStore

        return MemoryStore().unit_of_work, None
    from adapters.sqlalchemy import SqlAlchemyStore

    store = SqlAlchemyStore.from_url(settings.database_url)
    return store.unit_of_work, store.dispose
