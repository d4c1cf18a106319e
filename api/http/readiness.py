"""Readiness: can this process serve requests? Each dependency is one named check.

A check is an async callable that returns when its dependency answers and
raises otherwise. The database check opens a unit of work and runs a
trivial query through a port; more checks (the broker) are added to
:func:`readiness_checks`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from domain.ids import TenantId
from domain.pagination import PageRequest
from domain.ports import UnitOfWorkFactory
from domain.queries import JobQuery

if TYPE_CHECKING:
    from api.bootstrap import Container

log = logging.getLogger("ostinato.api")

Check = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_S = 3.0


def database_check(uow: UnitOfWorkFactory) -> Check:
    async def database() -> None:
        async with uow() as unit:
            await unit.jobs.list(TenantId("readyz"), JobQuery(page=PageRequest(limit=1)))

    return database


def readiness_checks(container: Container) -> dict[str, Check]:
    """The checks ``/readyz`` runs for ``container``."""
    checks: dict[str, Check] = {"database": database_check(container.uow)}
    # The broker's check goes here once the transport can be pinged:
    # checks["broker"] = container.transport.ping
    return checks


async def run_checks(checks: Mapping[str, Check], *, timeout_s: float = CHECK_TIMEOUT_S) -> dict[str, str | None]:
    """Each check's failure (the exception's class name, never its text), or ``None`` when it passed."""

    async def one(name: str, check: Check) -> str | None:
        try:
            await asyncio.wait_for(check(), timeout_s)
        except asyncio.TimeoutError:
            log.warning("readiness check %s timed out after %.1fs", name, timeout_s)
            return "timeout"
        except Exception as exc:  # a readiness probe reports, it does not raise
            log.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            return type(exc).__name__
        return None

    results = await asyncio.gather(*(one(name, check) for name, check in checks.items()))
    return dict(zip(checks, results, strict=True))
