"""Endpoint use cases: define, read, list, change, pause, resume, archive, hints, failures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from domain.endpoints import JobEndpoint
from domain.errors import ValidationFailed
from domain.ids import EndpointId, JobId, TenantId
from domain.pagination import Page
from domain.ports import Clock, UnitOfWorkFactory
from domain.queries import EndpointQuery
from domain.specs import (
    build_endpoint,
    endpoint_fields,
    endpoint_spec,
    interval_hint,
    oneshot_hint,
    parse_timestamp,
    with_api_paths,
)


class EndpointsService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create(self, tenant_id: TenantId, spec: Mapping[str, Any], *, job_id: JobId | None = None) -> JobEndpoint:
        """Define an endpoint (inside ``job_id`` when given); its first run is planned at once.

        A bad definition raises ``ValidationFailed`` naming each field and stores nothing;
        an unknown job raises ``NotFound``; a name the tenant already uses, ``AlreadyExists``.
        """
        fields = endpoint_fields(spec)
        if job_id is not None:
            fields["job_id"] = job_id
        now = self._clock.now()
        endpoint = build_endpoint(
            lambda **f: JobEndpoint.new(tenant_id=tenant_id, now=now, **f), fields
        )
        async with self._uow() as uow:
            if endpoint.job_id is not None:
                await uow.jobs.get(endpoint.job_id, tenant_id=tenant_id)
            await uow.endpoints.add(endpoint)
            await uow.commit()
        return endpoint

    async def get(self, tenant_id: TenantId, endpoint_id: EndpointId) -> JobEndpoint:
        async with self._uow() as uow:
            return await uow.endpoints.get(endpoint_id, tenant_id=tenant_id)

    async def list(self, tenant_id: TenantId, query: EndpointQuery | None = None) -> Page[JobEndpoint]:
        async with self._uow() as uow:
            return await uow.endpoints.list(tenant_id, query or EndpointQuery())

    async def update(self, tenant_id: TenantId, endpoint_id: EndpointId, patch: Mapping[str, Any]) -> JobEndpoint:
        """Change the given fields; the new schedule or bounds take effect at once (the next run is replanned)."""
        if not isinstance(patch, Mapping):
            raise ValidationFailed.field("", "must be an object")

        def change(uow_endpoint: JobEndpoint, now: datetime) -> JobEndpoint:
            merged = {**endpoint_spec(uow_endpoint), **patch}
            fields = endpoint_fields(merged)
            return build_endpoint(lambda **f: uow_endpoint.changed(now=now, **f), fields)

        return await self._change(tenant_id, endpoint_id, change, check_job=True)

    async def pause(self, tenant_id: TenantId, endpoint_id: EndpointId, *, until: datetime | str | None = None) -> JobEndpoint:
        """Pause indefinitely, or until a time (an aware ``datetime`` or ISO 8601 text)."""
        moment = None if until is None else parse_timestamp(until, "until")
        return await self._change(tenant_id, endpoint_id, lambda e, now: e.pause(now=now, until=moment))

    async def resume(self, tenant_id: TenantId, endpoint_id: EndpointId) -> JobEndpoint:
        return await self._change(tenant_id, endpoint_id, lambda e, now: e.resume(now=now))

    async def archive(self, tenant_id: TenantId, endpoint_id: EndpointId) -> JobEndpoint:
        return await self._change(tenant_id, endpoint_id, lambda e, now: e.archive(now=now))

    async def reset_failures(self, tenant_id: TenantId, endpoint_id: EndpointId) -> JobEndpoint:
        return await self._change(tenant_id, endpoint_id, lambda e, now: e.reset_failures(now=now))

    async def set_interval_hint(self, tenant_id: TenantId, endpoint_id: EndpointId, spec: Mapping[str, Any]) -> JobEndpoint:
        """Set ``{"interval_s", "ttl_s" | "expires_at", "reason"}``; refused outside the endpoint's bounds."""
        return await self._change(
            tenant_id,
            endpoint_id,
            lambda e, now: with_api_paths(lambda: e.set_interval_hint(interval_hint(spec, now=now), now=now)),
        )

    async def clear_interval_hint(self, tenant_id: TenantId, endpoint_id: EndpointId) -> JobEndpoint:
        return await self._change(tenant_id, endpoint_id, lambda e, now: e.clear_interval_hint(now=now))

    async def set_oneshot_hint(self, tenant_id: TenantId, endpoint_id: EndpointId, spec: Mapping[str, Any]) -> JobEndpoint:
        """Set ``{"run_at", "ttl_s" | "expires_at", "reason"}``."""
        return await self._change(
            tenant_id,
            endpoint_id,
            lambda e, now: with_api_paths(lambda: e.set_oneshot_hint(oneshot_hint(spec, now=now), now=now)),
        )

    async def clear_oneshot_hint(self, tenant_id: TenantId, endpoint_id: EndpointId) -> JobEndpoint:
        return await self._change(tenant_id, endpoint_id, lambda e, now: e.clear_oneshot_hint(now=now))

    async def _change(
        self,
        tenant_id: TenantId,
        endpoint_id: EndpointId,
        change: Callable[[JobEndpoint, datetime], JobEndpoint],
        *,
        check_job: bool = False,
    ) -> JobEndpoint:
        async with self._uow() as uow:
            endpoint = await uow.endpoints.get(endpoint_id, tenant_id=tenant_id, for_update=True)
            changed = change(endpoint, self._clock.now())
            if check_job and changed.job_id is not None and changed.job_id != endpoint.job_id:
                await uow.jobs.get(changed.job_id, tenant_id=tenant_id)
            await uow.endpoints.update(changed)
            await uow.commit()
        return changed


