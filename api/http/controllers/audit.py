"""``/v1/audit``: the tenant's audit trail (admin and operator)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api.http.auth import needs
from api.http.openapi import errors
from api.http.params import timestamp, timestamp_query
from api.http.schemas.audit import AuditEntryOut, AuditList
from domain.audit import AuditQuery
from domain.pagination import PageRequest
from domain.tokens import Permission
from services.audit import AuditService
from services.tokens import Principal


class AuditController(Controller):
    path = "/audit"
    tags = ["audit"]

    @get("/", opt=needs(Permission.AUDIT), responses=errors(), operation_id="listAudit", summary="List the audit trail")
    async def list_audit(
        self,
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        action: Annotated[
            str | None,
            QueryParameter(max_length=100, description="Only this action (job.create), or a family (endpoint.*)."),
        ] = None,
        target_kind: Annotated[
            str | None, QueryParameter(max_length=40, description="Only changes to this kind: job, endpoint, run, token.")
        ] = None,
        target_id: Annotated[str | None, QueryParameter(max_length=100, description="Only changes to this resource.")] = None,
        token_id: Annotated[str | None, QueryParameter(max_length=100, description="Only changes made with this token.")] = None,
        since: timestamp_query("Only changes at or after this time.") = None,
        until: timestamp_query("Only changes before this time.") = None,
    ) -> AuditList:
        """Who changed what in the tenant, and when, newest first. Admins and operators may read it."""
        query = AuditQuery(
            action=action or None,
            target_kind=target_kind or None,
            target_id=target_id or None,
            token_id=token_id or None,
            since=timestamp(since, "since"),
            until=timestamp(until, "until"),
            page=page,
        )
        result = await audit.list(principal.tenant_id, query)
        return AuditList(items=[AuditEntryOut.of(entry) for entry in result.items], next_cursor=result.next_cursor)
