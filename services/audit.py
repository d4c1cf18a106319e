"""The audit trail: record who changed what, in the same transaction as the change.

A driving adapter (the HTTP API) wraps each mutating use case in
:meth:`AuditService.action`::

    async with audit.action(actor, "endpoint.pause", "endpoint", endpoint_id, summary={"until": until}):
        await endpoints.pause(actor.tenant_id, endpoint_id, until=until)

The services it calls are built (in ``api.bootstrap``) over
:func:`audit_trail`, a unit-of-work factory that writes the pending entry
through ``uow.audit`` just before its first commit inside that block. So
the entry is stored exactly when the change is, and a refused or failed
change leaves no entry. When the block ends successfully without any
commit (a use case that stores nothing), the entry is recorded right after,
in a unit of work of its own.

The pending entry travels in a :class:`contextvars.ContextVar`, so it
follows the request's task and nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Self

from attrs import define, frozen

from domain.audit import AuditEntry, AuditQuery
from domain.ids import TenantId
from domain.pagination import Page
from domain.ports import Clock, UnitOfWork, UnitOfWorkFactory


@frozen(kw_only=True)
class Actor:
    """Who acts: a tenant and the token used (``None``: the system or the command line)."""

    tenant_id: TenantId
    token_id: str | None = None


@define(kw_only=True)
class PendingAudit:
    """An action in progress; ``target_id`` may be filled in later (a create learns its id on
    ``add``), ``recorded`` once its entry is stored."""

    actor: Actor
    action: str
    target_kind: str
    target_id: str | None = None
    summary: dict[str, Any]
    recorded: AuditEntry | None = None

    def entry(self, clock: Clock) -> AuditEntry:
        return AuditEntry.record(
            tenant_id=self.actor.tenant_id,
            token_id=self.actor.token_id,
            action=self.action,
            target_kind=self.target_kind,
            target_id=self.target_id,
            summary=self.summary,
            at=clock.now(),
        )


_pending: ContextVar[PendingAudit | None] = ContextVar("ostinato_pending_audit", default=None)

# repository attribute -> the target kind its entities are (for a create's target id)
_TRACKED = {
    "jobs": "job", "endpoints": "endpoint", "runs": "run", "tokens": "token",
    "workflows": "workflow", "workflow_runs": "workflow_run", "events": "event",
}


class AuditService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    @asynccontextmanager
    async def action(
        self,
        actor: Actor,
        action: str,
        target_kind: str,
        target_id: str | None = None,
        *,
        summary: dict[str, Any] | None = None,
    ) -> AsyncIterator[PendingAudit]:
        """Audit the use cases called inside the block as one ``action`` on a target.

        The entry is validated before the block runs, so a malformed action name fails
        before anything changes."""
        pending = PendingAudit(
            actor=actor, action=action, target_kind=target_kind, target_id=target_id, summary=dict(summary or {})
        )
        pending.entry(self._clock)  # validate now: action, kind and summary must be well-formed
        token = _pending.set(pending)
        try:
            yield pending
        finally:
            _pending.reset(token)
        if pending.recorded is None:
            entry = pending.entry(self._clock)
            async with self._uow() as uow:
                await uow.audit.add(entry)
                await uow.commit()
            pending.recorded = entry

    async def record(
        self,
        actor: Actor,
        action: str,
        target_kind: str,
        target_id: str | None = None,
        *,
        summary: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Store one entry on its own (for changes made outside an :meth:`action` block)."""
        entry = PendingAudit(
            actor=actor, action=action, target_kind=target_kind, target_id=target_id, summary=dict(summary or {})
        ).entry(self._clock)
        async with self._uow() as uow:
            await uow.audit.add(entry)
            await uow.commit()
        return entry

    async def list(self, tenant_id: TenantId, query: AuditQuery | None = None) -> Page[AuditEntry]:
        """A page of the tenant's entries, newest first."""
        async with self._uow() as uow:
            return await uow.audit.list(tenant_id, query or AuditQuery())


def audit_trail(factory: UnitOfWorkFactory, clock: Clock) -> UnitOfWorkFactory:
    """``factory`` whose units of work also store the pending audit entry (if any) on commit."""

    def make(*, read_only: bool = False) -> UnitOfWork:
        if read_only:  # nothing to audit: it does not commit
            return factory(read_only=True)
        return _AuditingUnitOfWork(factory(), clock)

    return make


class _AuditingUnitOfWork:
    """Delegates to a unit of work; on the first commit inside an audited action it adds the
    action's entry first, so both land in one transaction."""

    def __init__(self, inner: UnitOfWork, clock: Clock) -> None:
        self._inner = inner
        self._clock = clock
        for attribute, kind in _TRACKED.items():
            repository = getattr(inner, attribute, None)
            if repository is not None:
                setattr(self, attribute, _TrackingRepository(repository, kind))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        pending = _pending.get()
        if pending is None or pending.recorded is not None:
            await self._inner.commit()
            return
        entry = pending.entry(self._clock)
        await self._inner.audit.add(entry)
        await self._inner.commit()
        pending.recorded = entry

    async def rollback(self) -> None:
        await self._inner.rollback()


class _TrackingRepository:
    """Passes every call through; a new entity of the pending action's kind names its target."""

    def __init__(self, inner: Any, kind: str) -> None:
        self._inner = inner
        self._kind = kind

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def add(self, entity: Any) -> None:
        await self._inner.add(entity)
        self._name(entity)

    async def append(self, entities: Any) -> Any:
        """An append-only repository's ``append`` (events): the first entity names the target."""
        stored = await self._inner.append(entities)
        if stored:
            self._name(stored[0])
        return stored

    def _name(self, entity: Any) -> None:
        pending = _pending.get()
        if pending is not None and pending.target_id is None and pending.target_kind == self._kind:
            pending.target_id = str(entity.id)
