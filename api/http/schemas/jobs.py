"""Jobs: named groups of endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from api.http.schemas.common import Id, NextCursor, literal_of, utc
from domain.jobs import Job, JobStatus

JobStatusName = Annotated[literal_of(JobStatus), Meta(description="active, paused (none of its endpoints runs) or archived.")]
Slug = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
        description="Unique within the tenant: lowercase letters, digits and '-'.",
    ),
]
Name = Annotated[str, Meta(min_length=1, max_length=200, description="A display name.")]
Description = Annotated[
    str, Meta(max_length=10_000, description="What the job does, in natural language (the planner reads it).")
]
Labels = Annotated[dict[str, str], Meta(description="String key-value pairs to filter by (`?label=key=value`).")]
Annotations = Annotated[dict[str, str], Meta(description="Free-form string key-value pairs for tools and people.")]
Provenance = Annotated[str | None, Meta(description="Where the job's definition came from, e.g. a manifest path.")]


class JobCreate(Struct, kw_only=True, forbid_unknown_fields=True):
    """A new job. Only `slug` and `name` are required."""

    slug: Slug
    name: Name
    description: Description | UnsetType = UNSET
    labels: Labels | UnsetType = UNSET
    annotations: Annotations | UnsetType = UNSET
    provenance: Provenance | UnsetType = UNSET


class JobPatch(Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields to change; the ones left out keep their value. An archived job cannot change."""

    slug: Slug | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    description: Description | None | UnsetType = UNSET
    labels: Labels | None | UnsetType = UNSET
    annotations: Annotations | None | UnsetType = UNSET
    provenance: Provenance | UnsetType = UNSET


class JobOut(Struct, kw_only=True):
    """A job."""

    id: Id
    slug: Slug
    name: Name
    description: Description
    status: JobStatusName
    labels: Labels
    annotations: Annotations
    provenance: Provenance
    created_at: Annotated[datetime, Meta(description="When the job was created (UTC).")]
    updated_at: Annotated[datetime, Meta(description="When the job last changed (UTC).")]

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            slug=job.slug,
            name=job.name,
            description=job.description,
            status=job.status.value,
            labels=dict(job.labels),
            annotations=dict(job.annotations),
            provenance=job.provenance,
            created_at=utc(job.created_at),
            updated_at=utc(job.updated_at),
        )


class JobList(Struct, kw_only=True):
    """A page of jobs, newest first."""

    items: Annotated[list[JobOut], Meta(description="The jobs on this page.")]
    next_cursor: NextCursor
