"""Workflows, their versions and their triggers' scheduling state, in memory."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from attrs import evolve

from adapters.memory.store import MemoryStore, paginate
from domain.errors import AlreadyExists, Conflict, NotFound
from domain.events import topic_matches
from domain.ids import TenantId, new_id
from domain.pagination import Page
from domain.queries import WorkflowQuery
from domain.workflow_triggers import CronTrigger, cron_schedules, event_topics
from domain.workflows import Workflow, WorkflowId, WorkflowStatus


class MemoryWorkflowRepository:
    """``store.workflow_versions`` holds each version as added; ``store.workflow_heads`` the newest
    version with the workflow's current status; ``store.cron_triggers`` the newest version's
    cron triggers."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def _as_read(self, version: Workflow) -> Workflow:
        head = self._store.workflow_heads[version.id]
        if head.version == version.version:
            return head
        return evolve(version, status=head.status)

    async def add(self, workflow: Workflow) -> None:
        heads = self._store.workflow_heads
        if workflow.version == 1:
            taken = any(
                head.id == workflow.id or (head.tenant_id == workflow.tenant_id and head.slug == workflow.slug)
                for head in heads.values()
            )
            if taken:
                raise AlreadyExists("workflow", workflow.slug)
        else:
            head = heads.get(workflow.id)
            if head is None or head.tenant_id != workflow.tenant_id or head.version < workflow.version - 1:
                raise NotFound("workflow version", f"{workflow.slug}@{workflow.version - 1}")
            if head.version >= workflow.version:
                raise AlreadyExists("workflow version", f"{workflow.slug}@{workflow.version}")
        self._store.workflow_versions[(workflow.id, workflow.version)] = workflow
        heads[workflow.id] = workflow
        self._replace_triggers(workflow)

    def _replace_triggers(self, workflow: Workflow) -> None:
        triggers = self._store.cron_triggers
        kept: set[tuple[str, str]] = set()
        for trigger_id, trigger in list(triggers.items()):
            if trigger.workflow_id != workflow.id:
                continue
            key = (trigger.cron.cron, trigger.cron.timezone)
            if workflow.status is WorkflowStatus.ACTIVE and trigger.cron in cron_schedules(workflow) and key not in kept:
                kept.add(key)
            else:
                del triggers[trigger_id]
        if workflow.status is not WorkflowStatus.ACTIVE:
            return
        for schedule in cron_schedules(workflow):
            if (schedule.cron, schedule.timezone) in kept:
                continue
            kept.add((schedule.cron, schedule.timezone))
            trigger = CronTrigger(
                id=new_id(), tenant_id=workflow.tenant_id, workflow_id=workflow.id, cron=schedule,
                next_fire_at=schedule.next_after(workflow.updated_at),
            )
            triggers[trigger.id] = trigger

    async def get(self, slug: str, *, tenant_id: TenantId, version: int | None = None) -> Workflow:
        for head in self._store.workflow_heads.values():
            if head.tenant_id == tenant_id and head.slug == slug:
                if version is None:
                    return head
                return await self.get_by_id(head.id, version=version, tenant_id=tenant_id)
        raise NotFound("workflow", slug)

    async def get_by_id(
        self, workflow_id: WorkflowId, *, version: int | None = None, tenant_id: TenantId | None = None
    ) -> Workflow:
        head = self._store.workflow_heads.get(workflow_id)
        wanted = version if version is not None else (head.version if head is not None else 0)
        found = self._store.workflow_versions.get((workflow_id, wanted))
        if found is None or (tenant_id is not None and found.tenant_id != tenant_id):
            raise NotFound("workflow", workflow_id if version is None else f"{workflow_id}@{version}")
        return self._as_read(found)

    async def list(self, tenant_id: TenantId, query: WorkflowQuery) -> Page[Workflow]:
        def wanted(workflow: Workflow) -> bool:
            if workflow.tenant_id != tenant_id:
                return False
            if query.status is None:
                return workflow.status is not WorkflowStatus.ARCHIVED
            return workflow.status is query.status

        return paginate(
            filter(wanted, self._store.workflow_heads.values()), query.page, lambda w: (w.created_at, w.id)
        )

    async def update(self, workflow: Workflow) -> None:
        head = self._store.workflow_heads.get(workflow.id)
        if head is None or head.tenant_id != workflow.tenant_id:
            raise NotFound("workflow", workflow.slug)
        if head.version != workflow.version:
            raise Conflict(f"workflow {workflow.slug}: version {workflow.version} is not the newest ({head.version})")
        self._store.workflow_heads[workflow.id] = evolve(head, status=workflow.status, updated_at=workflow.updated_at)
        self._replace_triggers(self._store.workflow_heads[workflow.id])

    async def with_event_trigger(self, tenant_id: TenantId, topic: str) -> Sequence[Workflow]:
        found = [
            head for head in self._store.workflow_heads.values()
            if head.tenant_id == tenant_id and head.status is WorkflowStatus.ACTIVE
            and any(topic_matches(pattern, topic) for pattern in event_topics(head))
        ]
        return sorted(found, key=lambda w: (w.created_at, w.id))

    async def due_cron(self, now: datetime, limit: int, *, lease: timedelta, owner: str) -> Sequence[CronTrigger]:
        due = [
            t for t in self._store.cron_triggers.values()
            if t.next_fire_at <= now and (t.lease_expires_at is None or t.lease_expires_at <= now)
        ]
        due.sort(key=lambda t: (t.next_fire_at, t.id))
        claimed = [evolve(t, claimed_by=owner, lease_expires_at=now + lease) for t in due[: max(limit, 0)]]
        for trigger in claimed:
            self._store.cron_triggers[trigger.id] = trigger
        return claimed

    async def fire_cron(self, trigger: CronTrigger, *, next_fire_at: datetime) -> bool:
        stored = self._store.cron_triggers.get(trigger.id)
        if stored is None or stored.next_fire_at != trigger.next_fire_at:
            return False
        self._store.cron_triggers[trigger.id] = evolve(
            stored, next_fire_at=next_fire_at, claimed_by=None, lease_expires_at=None
        )
        return True

    async def next_cron_at(self) -> datetime | None:
        return min(
            (
                max(t.next_fire_at, t.lease_expires_at) if t.lease_expires_at is not None else t.next_fire_at
                for t in self._store.cron_triggers.values()
            ),
            default=None,
        )
