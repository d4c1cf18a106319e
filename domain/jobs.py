"""Job: a named group of endpoints (and, later, workflows) owned by a tenant."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from attrs import evolve, field, frozen

from domain.errors import InvalidTransition
from domain.ids import JobId, TenantId, new_id
from domain.validation import aware, non_empty_text, slug, string_map, text


class JobStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


@frozen(kw_only=True)
class Job:
    """A group of endpoints; its ``description`` is natural language the planner reads."""

    id: JobId
    tenant_id: TenantId = field(validator=non_empty_text(64))
    slug: str = field(validator=slug)
    name: str = field(validator=non_empty_text(200))
    description: str = field(default="", validator=text(10_000))
    status: JobStatus = field(default=JobStatus.ACTIVE, converter=JobStatus)
    labels: dict[str, str] = field(factory=dict, validator=string_map)
    annotations: dict[str, str] = field(factory=dict, validator=string_map)
    provenance: str | None = None
    created_at: datetime = field(validator=aware)
    updated_at: datetime = field(validator=aware)

    @classmethod
    def new(cls, *, tenant_id: TenantId, slug: str, name: str, now: datetime, **fields: Any) -> Job:
        return cls(id=JobId(new_id()), tenant_id=tenant_id, slug=slug, name=name, created_at=now, updated_at=now, **fields)

    def changed(self, *, now: datetime, **fields: Any) -> Job:
        """A copy with ``fields`` replaced (validators run again); archived jobs are read-only."""
        if self.status is JobStatus.ARCHIVED:
            raise InvalidTransition(f"job {self.slug} is archived and cannot be changed")
        forbidden = set(fields) & {"id", "tenant_id", "status", "created_at", "updated_at"}
        if forbidden:
            raise TypeError(f"use the lifecycle methods to change {', '.join(sorted(forbidden))}")
        return evolve(self, updated_at=now, **fields)

    def pause(self, *, now: datetime) -> Job:
        return self._move(JobStatus.PAUSED, now, allowed_from={JobStatus.ACTIVE, JobStatus.PAUSED})

    def resume(self, *, now: datetime) -> Job:
        return self._move(JobStatus.ACTIVE, now, allowed_from={JobStatus.ACTIVE, JobStatus.PAUSED})

    def archive(self, *, now: datetime) -> Job:
        return self._move(JobStatus.ARCHIVED, now, allowed_from={JobStatus.ACTIVE, JobStatus.PAUSED, JobStatus.ARCHIVED})

    def _move(self, to: JobStatus, now: datetime, *, allowed_from: set[JobStatus]) -> Job:
        if self.status not in allowed_from:
            raise InvalidTransition(f"job {self.slug}: {self.status} -> {to}")
        if self.status is to:
            return self
        return evolve(self, status=to, updated_at=now)
