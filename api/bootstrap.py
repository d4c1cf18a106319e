"""The composition root: the only place that chooses adapters.

``bootstrap(settings)`` builds a :class:`Container` from settings; tests pass
overrides (``bootstrap(settings, uow=store.unit_of_work, clock=clock)``)
instead of patching. Nothing connects until a unit of work is used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from attrs import define, field

import os
import socket
from datetime import timedelta

from api.settings import Settings, SettingsError, load_settings
from domain.clock import SystemClock
from domain.execution import Dispatcher, ExecutorRegistry
from domain.planning import DeterministicPlanner, Planner
from domain.ports import Clock, UnitOfWorkFactory
from services import EndpointsService, JobsService, RunsService
from services.events import EventsService
from services.execution import ExecutionService
from services.orchestrator import Orchestrator
from services.outcomes import OutcomeRecorder
from services.scheduler import SchedulerService
from services.triggers import WorkflowTriggersService
from services.workflows import WorkflowsService
from services.audit import AuditService, audit_trail
from services.tokens import TokensService, parse_configured_tokens


HEARTBEAT_MAX_S = 5.0
"""Longest interval between a worker's heartbeats, in seconds."""


@define
class Container:
    """Everything a driving adapter needs, built once per process."""

    settings: Settings
    clock: Clock
    uow: UnitOfWorkFactory
    jobs: JobsService
    endpoints: EndpointsService
    runs: RunsService
    tokens: TokensService
    audit: AuditService
    workflows: WorkflowsService
    events: EventsService
    recorder: OutcomeRecorder
    dispatcher: Dispatcher
    transport: Any = None
    executors: ExecutorRegistry | None = None
    wakeups: Any = None
    closers: list[Callable[[], Awaitable[None]]] = field(factory=list)
    store: Any = None
    """The SQLAlchemy store behind ``uow`` (None: memory, or a ``uow`` given by the caller)."""

    def scheduler(self, owner: str | None = None) -> SchedulerService:
        """A scheduler service claiming as ``owner`` (default: host and process id)."""
        s = self.settings
        return SchedulerService(
            uow=self.uow,
            clock=self.clock,
            dispatcher=self.dispatcher,
            owner=owner or process_identity("scheduler"),
            batch=s.scheduler_batch,
            lease=timedelta(seconds=s.scheduler_lease_s),
            max_sleep=timedelta(seconds=s.scheduler_max_sleep_s),
            lookahead=timedelta(milliseconds=s.scheduler_lookahead_ms),
        )

    def triggers(self, owner: str | None = None) -> WorkflowTriggersService:
        """The workflows' cron triggers, fired by a scheduler loop claiming as ``owner``."""
        return WorkflowTriggersService(
            uow=self.uow, clock=self.clock, workflows=self.workflows, owner=owner or process_identity("scheduler"),
            lease=timedelta(seconds=max(60.0, self.settings.scheduler_lease_s)),
        )

    def execution(self) -> ExecutionService:
        """The worker's service; builds the executors on first use."""
        if self.executors is None:
            self.executors = _executors(self.settings)
            self.closers.append(self.executors.aclose)
        # beats well inside the timeout after which the reconciler takes the worker for dead
        heartbeat = timedelta(seconds=min(HEARTBEAT_MAX_S, self.settings.heartbeat_timeout_s / 3))
        return ExecutionService(
            uow=self.uow, clock=self.clock, executors=self.executors, dispatcher=self.dispatcher, heartbeat=heartbeat,
            recorder=self.recorder, continue_locally=self.settings.worker_continue_locally,
        )

    async def open_connections(self) -> None:
        """Open the database pool's connections ahead of the first requests (PostgreSQL only;
        a server that cannot be reached yet leaves them to open on demand)."""
        if self.store is not None:
            await self.store.fill_pool()

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
    store = None
    if uow is None:
        uow, store = _storage(settings)
        if store is not None:
            closers.append(store.dispose)
    executors: ExecutorRegistry | None = overrides.pop("executors", None)
    transport = overrides.pop("transport", None)
    dispatcher: Dispatcher | None = overrides.pop("dispatcher", None)
    planner: Planner | None = overrides.pop("planner", None)
    wakeups = overrides.pop("wakeups", None)
    if wakeups is None and settings.database_kind == "postgresql":
        wakeups = _wakeups(settings)
    if dispatcher is None:
        transport = transport or make_transport(settings)
        dispatcher = transport.dispatcher
    if overrides:
        raise TypeError(f"unknown overrides: {', '.join(sorted(overrides))}")
    # The services the API calls write the pending audit entry in the same transaction as the change.
    audited = audit_trail(uow, clock)
    # Workers and reconcilers advance workflow runs in the transaction that records their steps' outcomes.
    recorder = OutcomeRecorder(listener=Orchestrator(uow=uow, clock=clock))
    workflows = WorkflowsService(
        uow=audited, clock=clock, dispatcher=dispatcher, planner=planner or _planner(settings),
        orchestrator=Orchestrator(uow=audited, clock=clock),
    )
    return Container(
        settings=settings,
        clock=clock,
        uow=uow,
        jobs=JobsService(uow=audited, clock=clock),
        endpoints=EndpointsService(uow=audited, clock=clock),
        runs=RunsService(uow=audited, clock=clock, dispatcher=dispatcher, recorder=recorder),
        tokens=TokensService(
            uow=audited, clock=clock, configured=parse_configured_tokens(settings.api_tokens.get_secret_value())
        ),
        audit=AuditService(uow=uow, clock=clock),
        workflows=workflows,
        events=EventsService(uow=audited, clock=clock, workflows=workflows),
        recorder=recorder,
        dispatcher=dispatcher,
        transport=transport,
        executors=executors,
        wakeups=wakeups,
        closers=closers,
        store=store,
    )


def make_transport(settings: Settings) -> Any:
    """The Dramatiq transport for ``OSTINATO_BROKER_URL`` (empty: in-process)."""
    from adapters.dramatiq import DramatiqTransport

    return DramatiqTransport(settings.broker_url)


def process_identity(role: str) -> str:
    """``role@host:pid``: who claimed an endpoint or runs a run."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


def _executors(settings: Settings) -> ExecutorRegistry:
    from adapters.executors import Executors
    from adapters.python import load_modules

    load_modules(settings.handler_module_list)
    return Executors.default()


def _planner(settings: Settings) -> Planner:
    """The planner of ``planner: ai`` workflows: the deterministic one unless ``OSTINATO_PLANNER=openai``."""
    if settings.planner != "openai":
        return DeterministicPlanner()
    if settings.openai_api_key is None:
        raise SettingsError("OPENAI_API_KEY: is required when OSTINATO_PLANNER is openai")
    from adapters.openai import from_settings

    return from_settings(settings.openai_api_key.get_secret_value(), settings.openai_base_url, settings.openai_model)


def _wakeups(settings: Settings) -> Any:
    """The LISTEN/NOTIFY wake-ups of a scheduler on PostgreSQL; connects only when a scheduler loop runs it."""
    from adapters.postgres import PostgresWakeups

    return PostgresWakeups(settings.database_url)


def _storage(settings: Settings) -> tuple[UnitOfWorkFactory, Any]:
    """The units of work for ``database_url``, and the SQLAlchemy store behind them (None: memory)."""
    if settings.database_kind == "memory":
        from adapters.memory import MemoryStore

        return MemoryStore().unit_of_work, None
    from adapters.sqlalchemy import SqlAlchemyStore

    pool = {"pool_size": settings.database_pool_size}
    store = SqlAlchemyStore.from_url(settings.database_url, **(pool if settings.database_kind == "postgresql" else {}))
    return store.unit_of_work, store
