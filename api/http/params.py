"""Query parameters shared by the list routes: the page, and timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar.params import PathParameter, QueryParameter

from domain.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor, PageRequest
from domain.specs import parse_timestamp

Limit = Annotated[
    int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"Items per page (1 to {MAX_LIMIT}).")
]
CursorParam = Annotated[
    str | None,
    QueryParameter(max_length=1000, description="The next_cursor of the previous page; leave out for the first page."),
]


JobIdPath = Annotated[str, PathParameter(description="The job's id.")]
EndpointIdPath = Annotated[str, PathParameter(description="The endpoint's id.")]
RunIdPath = Annotated[str, PathParameter(description="The run's id.")]
TokenIdPath = Annotated[str, PathParameter(description="The token's id.")]
WorkflowSlugPath = Annotated[str, PathParameter(description="The workflow's slug.")]
WorkflowRunIdPath = Annotated[str, PathParameter(description="The workflow run's id.")]


def timestamp_query(description: str) -> Any:
    """An optional query timestamp (ISO 8601 with an offset); parsed with :func:`timestamp`."""
    return Annotated[
        str | None,
        QueryParameter(
            description=f"{description} ISO 8601 with a UTC offset or Z.",
            max_length=64,
            schema_extra={"format": "date-time"},
        ),
    ]


def provide_page(limit: Limit = DEFAULT_LIMIT, cursor: CursorParam = None) -> PageRequest:
    """The page a list route answers: ``limit`` items after ``cursor``."""
    return PageRequest(limit=limit, cursor=Cursor.decode(cursor) if cursor else None)


def timestamp(value: str | None, name: str) -> datetime | None:
    """The query timestamp ``name``; raises ``ValidationFailed`` naming it."""
    return None if value is None else parse_timestamp(value, name)
