"""Helpers shared by the contract suites: storing entities, reading every page, checking times."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import attrs

from domain.endpoints import JobEndpoint
from domain.jobs import Job
from domain.pagination import Cursor, Page, PageRequest
from domain.runs import Run


async def given_stored(store: Any, *entities: Job | JobEndpoint | Run) -> None:
    """Store ``entities`` (jobs, endpoints, runs, in the order given) in one committed unit of work."""
    async with store.unit_of_work() as uow:
        for entity in entities:
            if isinstance(entity, Job):
                await uow.jobs.add(entity)
            elif isinstance(entity, JobEndpoint):
                await uow.endpoints.add(entity)
            else:
                await uow.runs.add(entity)
        await uow.commit()


async def every_page(fetch: Callable[[PageRequest], Awaitable[Page[Any]]], *, limit: int) -> list[Page[Any]]:
    """Follow ``next_cursor`` from the first page to the last."""
    pages: list[Page[Any]] = []
    cursor: Cursor | None = None
    while True:
        page = await fetch(PageRequest(limit=limit, cursor=cursor))
        pages.append(page)
        if page.next_cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not end"
        cursor = Cursor.decode(page.next_cursor)


def newest_first(items: list[Any], at: Callable[[Any], datetime]) -> list[Any]:
    """``items`` in the order every list promises: newest first, ties broken by id, descending."""
    return sorted(items, key=lambda item: (at(item), item.id), reverse=True)


def ids(items: Any) -> list[str]:
    return [item.id for item in items]


def datetimes_in(value: Any, path: str = "") -> list[tuple[str, datetime]]:
    """Every datetime inside an attrs entity (hints and results included), with its path."""
    if isinstance(value, datetime):
        return [(path, value)]
    if attrs.has(type(value)):
        found = []
        for field in attrs.fields(type(value)):
            found += datetimes_in(getattr(value, field.name), f"{path}.{field.name}" if path else field.name)
        return found
    return []


def assert_utc_aware(entity: Any) -> None:
    """Every timestamp read back is timezone-aware and in UTC."""
    found = datetimes_in(entity)
    assert found, "expected the entity to hold timestamps"
    for path, moment in found:
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0), f"{path} is {moment!r}"
