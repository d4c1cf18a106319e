"""The audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta, Struct

from api.http.schemas.common import Id, NextCursor, utc
from domain.audit import AuditEntry


class AuditEntryOut(Struct, kw_only=True):
    """One change made through the API."""

    id: Id
    token_id: Annotated[str | None, Meta(description="The token that made the change; null for the system or the CLI.")]
    action: Annotated[str, Meta(description="What was done, e.g. job.create or endpoint.pause.")]
    target_kind: Annotated[str, Meta(description="The kind of resource changed: job, endpoint, run or token.")]
    target_id: Annotated[str | None, Meta(description="The id of the resource changed.")]
    summary: Annotated[dict[str, Any], Meta(description="What changed, in brief (never secrets).")]
    at: Annotated[datetime, Meta(description="When (UTC).")]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            id=entry.id,
            token_id=entry.token_id,
            action=entry.action,
            target_kind=entry.target_kind,
            target_id=entry.target_id,
            summary=dict(entry.summary),
            at=utc(entry.at),
        )


class AuditList(Struct, kw_only=True):
    """A page of audit entries, newest first."""

    items: Annotated[list[AuditEntryOut], Meta(description="The entries on this page.")]
    next_cursor: NextCursor
