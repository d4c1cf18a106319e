"""Ports: what the services need from the outside world, as async Protocols.

Every adapter of a port passes the same contract suite (``tests/contract``).
``get`` raises :class:`~domain.errors.NotFound`, never returns ``None``. A
``tenant_id`` of ``None`` is the system's view across tenants (scheduler,
workers); the API always passes the caller's tenant, so another tenant's
rows answer ``NotFound``.

Lock order, for every writer (PostgreSQL row locks; SQLite and memory take one
write lock per transaction, so the order only matters there):

1. endpoints, in id order;
2. runs, in id order;
3. workflow runs, in id order — a workflow run's row guards its steps: every
   writer of a run's steps holds the run's row, so the steps need no lock of
   their own;
4. a tenant's event sequence (taken by :meth:`EventRepository.append`), last,
   in tenant order, held until commit.

A transaction never waits for an endpoint or a run while it holds a workflow
run, nor for anything while it holds an event sequence: the job runs a
workflow cancels are canceled after its transaction commits, in one of their
own. The engine (a worker recording outcomes, the reconciler expiring runs)
locks endpoints and runs first and then advances their workflow runs in the
same transaction, so this order cannot deadlock with it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from domain.audit import AuditEntry, AuditQuery
from domain.endpoints import JobEndpoint
from domain.events import Event
from domain.ids import EndpointId, JobId, RunId, TenantId
from domain.jobs import Job
from domain.pagination import Page, PageRequest
from domain.queries import EndpointQuery, EventQuery, JobQuery, RunQuery, WorkflowQuery
from domain.run_logs import LogLine
from domain.runs import Run, RunView
from domain.tokens import ApiToken, TokenId
from domain.workflow_triggers import CronTrigger
from domain.workflows import Workflow, WorkflowId, WorkflowRun, WorkflowRunId, WorkflowRunStep


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

    async def get(
        self, endpoint_id: EndpointId, *, tenant_id: TenantId | None, for_update: bool = False
    ) -> JobEndpoint:
        """The endpoint; raises ``NotFound``. ``for_update`` locks it as in :meth:`get_many`."""

    async def update(self, endpoint: JobEndpoint) -> None:
        """Replace the stored endpoint; raises ``NotFound``, or ``AlreadyExists`` on a name taken."""

    async def list(self, tenant_id: TenantId, query: EndpointQuery) -> Page[JobEndpoint]:
        """A page of the tenant's endpoints, newest first."""

    async def get_many(
        self, endpoint_ids: Sequence[EndpointId], *, for_update: bool = False
    ) -> dict[EndpointId, JobEndpoint]:
        """The endpoints among ``endpoint_ids`` that exist, by id (any tenant; for workers).

        With ``for_update`` the rows stay locked until the unit of work ends (PostgreSQL
        ``FOR UPDATE``, in id order), so a read-modify-write cannot lose a concurrent change."""

    async def update_many(self, endpoints: Sequence[JobEndpoint]) -> None:
        """Replace several stored endpoints in one batch (their names are unchanged)."""

    async def store_fired(self, endpoints: Sequence[JobEndpoint]) -> None:
        """Store what firing changed in endpoints this unit of work claimed (``claim_due``, then
        :meth:`JobEndpoint.fired`): the next run and its source, the last run, the hints and the
        lease; nothing of their definition. One batch; an endpoint not stored raises ``NotFound``
        (those this unit of work claimed need no lookup for that)."""

    async def next_due_at(self) -> datetime | None:
        """The earliest ``next_run_at`` of an active endpoint whose job (if any) is active, if any
        (how long a scheduler may sleep). An endpoint of a paused job is left out: its overdue
        ``next_run_at`` would otherwise keep the scheduler from sleeping until the job resumes."""

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

    async def get(self, run_id: RunId, *, tenant_id: TenantId | None, for_update: bool = False) -> Run:
        """The run; raises ``NotFound``. ``for_update`` locks it until the unit of work ends
        (PostgreSQL), so a cancel and a worker's result cannot overwrite each other."""

    async def update(self, run: Run) -> None:
        """Replace the stored run; raises ``NotFound``."""

    async def list(self, tenant_id: TenantId | None, query: RunQuery) -> Page[Run]:
        """A page of runs, newest ``scheduled_at`` first."""

    async def list_views(self, tenant_id: TenantId | None, query: RunQuery) -> Page[RunView]:
        """The page :meth:`list` returns, as read models (what a history shows, built straight
        from the rows)."""

    async def add_new(self, runs: Sequence[Run]) -> Sequence[Run]:
        """Store ``runs`` in one batch, skipping any whose (endpoint, slot) already has a run;
        returns the runs stored. This is what makes a slot fire once across schedulers."""

    async def update_many(self, runs: Sequence[Run]) -> None:
        """Replace several stored runs in one batch."""

    async def get_many(self, run_ids: Sequence[RunId], *, for_update: bool = False) -> dict[RunId, Run]:
        """The runs among ``run_ids`` that exist, by id (any tenant; for workers); ``for_update``
        locks them in id order until the unit of work ends."""

    async def next_pending_at(self) -> datetime | None:
        """The earliest ``scheduled_at`` of a pending run never dispatched (a retry waiting for its time)."""

    async def start(self, run_ids: Sequence[RunId], *, at: datetime, worker: str) -> Sequence[Run]:
        """Move each pending run of ``run_ids`` to running for ``worker``, atomically, and return
        those moved. A run that is no longer pending is skipped (a duplicated message does
        nothing), and so is an exclusive run whose endpoint already has an exclusive run
        running (it stays pending and is dispatched again later)."""

    async def beat(self, run_ids: Sequence[RunId], *, at: datetime) -> Sequence[RunId]:
        """Record a heartbeat for the running runs among ``run_ids``; return the ids that are
        no longer running (canceled or expired meanwhile), so their worker can stop them."""

    async def mark_dispatched(self, run_ids: Sequence[RunId], *, at: datetime) -> None:
        """Record that the pending runs among ``run_ids`` were handed to the broker at ``at``;
        a run another unit of work has locked (starting, canceling or sending it) is left as
        it is, not waited for."""

    async def to_dispatch(self, *, now: datetime, dispatched_before: datetime | None, limit: int) -> Sequence[Run]:
        """Pending runs due by ``now`` that were never dispatched, or last dispatched before
        ``dispatched_before`` (their message may be lost; ``None``: only the never dispatched,
        a query that reads only those); oldest ``scheduled_at`` first."""

    async def stale_running(self, *, heartbeat_before: datetime, limit: int) -> Sequence[Run]:
        """Running runs whose last heartbeat is older than ``heartbeat_before`` (their worker died).
        Not locked: lock their endpoints, then the runs (``get_many(for_update=True)``), and check again.

        Lock order, everywhere: endpoints before runs, each in id order, so no two transactions
        wait for each other."""

    async def oldest_pending(self, endpoint_ids: Sequence[EndpointId], *, now: datetime) -> Sequence[Run]:
        """For each of ``endpoint_ids``, its oldest pending run due by ``now`` (if any), in one query."""


class RunLogRepository(Protocol):
    async def append(self, lines: Sequence[LogLine]) -> None:
        """Store log lines (each ``(run_id, seq)`` once)."""

    async def list(self, run_id: RunId, *, tenant_id: TenantId | None) -> Sequence[LogLine]:
        """The run's lines in ``seq`` order (empty for a run without logs)."""


class TokenRepository(Protocol):
    async def add(self, token: ApiToken) -> None:
        """Store a new token; raises ``AlreadyExists`` when its id or hash is taken."""

    async def get(self, token_id: TokenId, *, tenant_id: TenantId | None) -> ApiToken:
        """The token; raises ``NotFound``."""

    async def get_by_hash(self, token_hash: str) -> ApiToken:
        """The token (of any tenant) whose secret hashes to ``token_hash``; raises ``NotFound``."""

    async def update(self, token: ApiToken) -> None:
        """Replace the stored token (its use and revocation times); raises ``NotFound``."""

    async def list(self, tenant_id: TenantId | None, page: PageRequest) -> Page[ApiToken]:
        """A page of tokens, revoked ones included, newest ``created_at`` first."""


class AuditRepository(Protocol):
    async def add(self, entry: AuditEntry) -> None:
        """Append an entry; raises ``AlreadyExists`` when its id is taken. Entries never change."""

    async def list(self, tenant_id: TenantId, query: AuditQuery) -> Page[AuditEntry]:
        """A page of the tenant's entries matching ``query``, newest ``at`` first."""


class WorkflowRepository(Protocol):
    """Workflows and their versions. A version never changes once stored, except the workflow's
    ``status`` (and ``updated_at``), which is the workflow's and reads the same in every version.
    The repository also keeps the scheduling state of the newest version's triggers
    (:class:`~domain.workflow_triggers.CronTrigger` for cron ones)."""

    async def add(self, workflow: Workflow) -> None:
        """Store version 1 of a new workflow, or the next version of a stored one (its triggers
        replace the previous version's; a cron trigger that stays keeps its ``next_fire_at``,
        a new one fires first at its slot after ``workflow.updated_at``). Raises
        ``AlreadyExists`` when the tenant already has the slug (version 1) or the version is
        taken (a concurrent revision), ``NotFound`` when version ``n - 1`` is not stored."""

    async def get(self, slug: str, *, tenant_id: TenantId, version: int | None = None) -> Workflow:
        """The tenant's workflow ``slug`` at its newest version, or at ``version``; raises ``NotFound``."""

    async def get_by_id(
        self, workflow_id: WorkflowId, *, version: int | None = None, tenant_id: TenantId | None = None
    ) -> Workflow:
        """Workflow ``workflow_id`` at its newest version, or at ``version``; raises ``NotFound``."""

    async def list(self, tenant_id: TenantId, query: WorkflowQuery) -> Page[Workflow]:
        """A page of the tenant's workflows at their newest versions, newest ``created_at`` first;
        archived ones only when ``query.status`` asks for them."""

    async def update(self, workflow: Workflow) -> None:
        """Store the ``status`` and ``updated_at`` of the workflow's newest version (the
        definition never changes in place: :meth:`add` a version). An archived workflow's
        triggers stop: none is returned by :meth:`with_event_trigger` or :meth:`due_cron`.
        Raises ``NotFound``, or ``Conflict`` when ``workflow`` is not the newest version."""

    async def with_event_trigger(self, tenant_id: TenantId, topic: str) -> Sequence[Workflow]:
        """The tenant's active workflows (newest versions) with an event trigger naming ``topic``
        (see :func:`domain.events.topic_matches`), oldest first."""

    async def due_cron(self, now: datetime, limit: int, *, lease: timedelta, owner: str) -> Sequence[CronTrigger]:
        """Lease up to ``limit`` cron triggers of active workflows whose ``next_fire_at <= now``
        and whose lease (if any) has ended, to ``owner`` until ``now + lease``; earliest first.
        Concurrent claimers never receive the same trigger while its lease lasts."""

    async def fire_cron(self, trigger: CronTrigger, *, next_fire_at: datetime) -> bool:
        """Move ``trigger`` from its slot (``trigger.next_fire_at``) to ``next_fire_at`` and end
        its lease, if its slot is still that one; True when it moved. Only the transaction that
        moves it may start the slot's run: this is what makes a slot fire once."""

    async def next_cron_at(self) -> datetime | None:
        """When the next cron trigger of an active workflow may be claimed, if any: its
        ``next_fire_at``, or the end of its lease when that is later (a scheduler that
        claimed it and died), so a scheduler never spins on a slot it cannot take."""


class WorkflowRunRepository(Protocol):
    async def add(self, run: WorkflowRun) -> None:
        """Store a new run; raises ``AlreadyExists`` when its id is taken."""

    async def get(
        self, run_id: WorkflowRunId, *, tenant_id: TenantId | None, for_update: bool = False
    ) -> WorkflowRun:
        """The run; raises ``NotFound``. ``for_update`` locks its row until the unit of work ends
        (and with it, by convention, its steps)."""

    async def get_many(
        self, run_ids: Sequence[WorkflowRunId], *, for_update: bool = False
    ) -> dict[WorkflowRunId, WorkflowRun]:
        """The runs among ``run_ids`` that exist, by id (any tenant); ``for_update`` locks them in id order."""

    async def update(self, run: WorkflowRun) -> None:
        """Replace the stored run; raises ``NotFound``."""

    async def list(self, tenant_id: TenantId, workflow_id: WorkflowId, page: PageRequest) -> Page[WorkflowRun]:
        """A page of the workflow's runs (every version), newest ``created_at`` first."""


class WorkflowStepRepository(Protocol):
    """The steps of workflow runs: one :class:`~domain.workflows.WorkflowRunStep` per step and run."""

    async def add_many(self, steps: Sequence[WorkflowRunStep]) -> None:
        """Store new step states; raises ``AlreadyExists`` when a run already has one of the steps,
        ``NotFound`` when their run is not stored."""

    async def list_for_run(
        self, run_id: WorkflowRunId, *, keys: Collection[str] | None = None, for_update: bool = False
    ) -> Sequence[WorkflowRunStep]:
        """The run's steps, by step key (empty for an unknown run); with ``keys``, only those
        (keys the run lacks are left out). The run's row guards them: writers lock the run
        (``WorkflowRunRepository.get(for_update=True)``) first; ``for_update`` also locks the
        step rows."""

    async def update_many(self, steps: Sequence[WorkflowRunStep]) -> None:
        """Replace stored step states in one batch; raises ``NotFound`` for one not stored."""


class EventRepository(Protocol):
    async def append(self, events: Sequence[Event]) -> Sequence[Event]:
        """Store ``events`` (their ``seq`` is ignored) and return them numbered: each tenant's
        next sequence numbers, in the order given. The tenant's sequence stays locked until
        the unit of work ends, so numbers follow commit order and have no gaps; append last
        in a transaction (see the lock order above). Raises ``AlreadyExists`` on a taken id."""

    async def list(self, tenant_id: TenantId, query: EventQuery) -> Page[Event]:
        """A page of the tenant's events in ``seq`` order (see :class:`~domain.queries.EventQuery`)."""


class UnitOfWork(Protocol):
    """One transaction over the repositories. Leaving the block without
    :meth:`commit` rolls back, so an error anywhere stores nothing.

    A read-only unit of work (``uow(read_only=True)``) serves a use case that
    only reads: writing or committing in it is a bug (``RuntimeError``). It may read
    without a transaction (PostgreSQL does: no ``BEGIN``/``ROLLBACK`` round
    trips), each statement seeing what was committed when it began, so a use
    case whose reads must agree with each other uses a read-write one.
    """

    jobs: JobRepository
    endpoints: EndpointRepository
    runs: RunRepository
    run_logs: RunLogRepository
    tokens: TokenRepository
    audit: AuditRepository
    workflows: WorkflowRepository
    workflow_runs: WorkflowRunRepository
    workflow_steps: WorkflowStepRepository
    events: EventRepository

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
    """Makes a fresh :class:`UnitOfWork` for each use case; ``read_only`` for one that only reads."""

    def __call__(self, *, read_only: bool = False) -> UnitOfWork: ...
