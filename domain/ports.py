"""Ports: what the services need from the outside world, as async Protocols.

Every adapter of a port passes the same contract suite (``tests/contract``).
``get`` raises :class:`~domain.errors.NotFound`, never returns ``None``. A
``tenant_id`` of ``None`` is the system's view across tenants (scheduler,
workers); the API always passes the caller's tenant, so another tenant's
rows answer ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from domain.endpoints import JobEndpoint
from domain.ids import EndpointId, JobId, RunId, TenantId
from domain.jobs import Job
from domain.pagination import Page
from domain.queries import EndpointQuery, JobQuery, RunQuery
from domain.runs import Run


class Clock(Protocol):
    """The current time, timezone-aware (UTC)."""

    def now(self) -> datetime: ...


class JobRepository(Protocol):
    async def add(self, job: Job) -> None:
        """Store a new job; raises ``AlreadyExists`` when the tenant already has its slug."""

    async def get(self, job_id: JobId, *, tenant_id: TenantId | None) -> Job:
        """The job; raises ``NotFound``."""

    async def get_by_slug(self, slug: str, *, tenant_id: TenantId) -> Job:
        """The tenant's job with ``slug``; raises ``NotFound``."""

    async def update(self, job: Job) -> None:
        """Replace the stored job; raises ``NotFound``, or ``AlreadyExists`` on a slug taken."""

    async def list(self, tenant_id: TenantId, query: JobQuery) -> Page[Job]:
        """A page of the tenant's jobs, newest first."""


class EndpointRepository(Protocol):
    async def add(self, endpoint: JobEndpoint) -> None:
        """Store a new endpoint; raises ``AlreadyExists`` when the tenant already has its name."""

    async def get(self, endpoint_id: EndpointId, *, tenant_id: TenantId | None) -> JobEndpoint:
        """The endpoint; raises ``NotFound``."""

    async def update(self, endpoint: JobEndpoint) -> None:
        """Replace the stored endpoint; raises ``NotFound``, or ``AlreadyExists`` on a name taken."""

    async def list(self, tenant_id: TenantId, query: EndpointQuery) -> Page[JobEndpoint]:
        """A page of the tenant's endpoints, newest first."""

    async def claim_due(self, now: datetime, limit: int, lease: timedelta, owner: str) -> Sequence[JobEndpoint]:
        """Lease up to ``limit`` due endpoints to ``owner`` until ``now + lease`` and return them.

        Due: ``next_run_at <= now``, active, not paused until a later time, its
        job (if any) active, and no unexpired lease. Highest priority first,
        then earliest ``next_run_at``. Concurrent claimers never receive the
        same endpoint while its lease lasts.
        """


class RunRepository(Protocol):
    async def add(self, run: Run) -> None:
        """Store a new run; raises ``AlreadyExists`` when its endpoint already has a run for its slot."""

    async def get(self, run_id: RunId, *, tenant_id: TenantId | None) -> Run:
        """The run; raises ``NotFound``."""

    async def update(self, run: Run) -> None:
        """Replace the stored run; raises ``NotFound``."""

    async def list(self, tenant_id: TenantId | None, query: RunQuery) -> Page[Run]:
        """A page of runs, newest ``scheduled_at`` first."""


class UnitOfWork(Protocol):
    """One transaction over the repositories. Leaving the block without
    :meth:`commit` rolls back, so an error anywhere stores nothing."""

    jobs: JobRepository
    endpoints: EndpointRepository
    runs: RunRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Makes a fresh :class:`UnitOfWork` for each use case."""

    def __call__(self) -> UnitOfWork: ...
