"""Shared field types and helpers for the API's schemas."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

MAX_SECONDS = 10 * 365 * 24 * 3600


def literal_of(values: type[enum.Enum]) -> Any:
    """A ``Literal`` of an enum's values: the schema lists them inline, the domain keeps the enum."""
    return Literal[tuple(member.value for member in values)]  # type: ignore[misc]


def timestamp(description: str) -> Any:
    """A request timestamp: ISO 8601 text with a UTC offset or ``Z`` (numbers are refused)."""
    return Annotated[
        str,
        Meta(
            description=f"{description} ISO 8601 with a UTC offset or Z, e.g. 2026-01-05T12:00:00Z.",
            extra_json_schema={"extra": {"format": "date-time"}},
        ),
    ]


def seconds(description: str) -> Any:
    """A request duration in seconds: greater than zero, at most ten years."""
    return Annotated[float, Meta(gt=0, le=MAX_SECONDS, description=f"{description} In seconds.")]


def utc(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC, so it is written with ``Z``; as it is when it is already (what the
    database gives back: a page of runs carries 200 timestamps)."""
    if moment is None or moment.tzinfo is timezone.utc:
        return moment
    return moment.astimezone(timezone.utc)


def in_seconds(duration: timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


def given(request: msgspec.Struct) -> dict[str, Any]:
    """The fields a client sent (unset ones left out), in the public vocabulary the domain parses."""
    value = msgspec.to_builtins(request)
    assert isinstance(value, Mapping)
    return dict(value)


Id = Annotated[str, Meta(description="The resource's id (a UUID).")]
NextCursor = Annotated[
    str | None,
    Meta(description="Pass as `cursor` to get the next page; null on the last page."),
]
