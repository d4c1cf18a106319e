"""Workflows in ``workflows`` (one row each) and ``workflow_versions`` (one row per version), and
their triggers' scheduling state in ``workflow_triggers``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, case, delete, func, insert, or_, select, update

from adapters.sqlalchemy.repository import Repository
from adapters.sqlalchemy.tables import workflow_triggers as trigger_table
from adapters.sqlalchemy.tables import workflow_versions as version_table
from adapters.sqlalchemy.tables import workflows as workflow_table
from domain.errors import AlreadyExists, Conflict, NotFound
from domain.events import topic_matches
from domain.ids import TenantId, new_id
from domain.pagination import Page
from domain.queries import WorkflowQuery
from domain.schedules import CronSchedule
from domain.workflow_specs import parse_trigger, step_spec, steps_from, trigger_spec
from domain.workflow_triggers import CronTrigger
from domain.workflows import PlannerKind, TriggerKind, Workflow, WorkflowId, WorkflowStatus

W, V, T = workflow_table, version_table, trigger_table

_COLUMNS = (
    W.c.id, W.c.tenant_id, W.c.slug, W.c.version.label("newest"), W.c.status, W.c.created_at, W.c.updated_at,
    V.c.version, V.c.name, V.c.description, V.c.planner, V.c.steps, V.c.triggers,
    V.c.created_at.label("version_created_at"),
)


def _head_values(workflow: Workflow) -> dict[str, Any]:
    return {
        "id": workflow.id,
        "tenant_id": workflow.tenant_id,
        "slug": workflow.slug,
        "version": workflow.version,
        "status": workflow.status.value,
        "created_at": workflow.created_at,
        "updated_at": workflow.updated_at,
    }


def _version_values(workflow: Workflow) -> dict[str, Any]:
    return {
        "workflow_id": workflow.id,
        "version": workflow.version,
        "tenant_id": workflow.tenant_id,
        "name": workflow.name,
        "description": workflow.description,
        "planner": workflow.planner.value,
        "steps": [step_spec(step) for step in workflow.steps],
        "triggers": [trigger_spec(trigger) for trigger in workflow.triggers],
        "created_at": workflow.updated_at,
    }


def _to_workflow(row: Row[Any]) -> Workflow:
    """A version as read: the workflow's status, and the newest version's ``updated_at`` (which
    moves on archiving) or an older version's own time."""
    newest = row.version == row.newest
    return Workflow(
        id=WorkflowId(row.id),
        tenant_id=TenantId(row.tenant_id),
        slug=row.slug,
        name=row.name,
        description=row.description,
        version=row.version,
        planner=PlannerKind(row.planner),
        steps=steps_from(row.steps),
        triggers=tuple(parse_trigger(spec) for spec in row.triggers),
        status=WorkflowStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at if newest else row.version_created_at,
    )


def _to_trigger(row: Row[Any]) -> CronTrigger:
    return CronTrigger(
        id=row.id,
        tenant_id=TenantId(row.tenant_id),
        workflow_id=WorkflowId(row.workflow_id),
        cron=CronSchedule(cron=row.cron, timezone=row.timezone),
        next_fire_at=row.next_fire_at,
        claimed_by=row.claimed_by,
        lease_expires_at=row.lease_expires_at,
    )


def _trigger_key(kind: str, topic: str | None, cron: str | None, timezone: str | None) -> tuple[Any, ...]:
    return (kind, topic, cron, timezone)


def _newest() -> Select[Any]:
    return select(*_COLUMNS).select_from(W.join(V, (V.c.workflow_id == W.c.id) & (V.c.version == W.c.version)))


class SqlAlchemyWorkflowRepository(Repository):
    async def add(self, workflow: Workflow) -> None:
        if workflow.version == 1:
            stored = await self._execute(
                self._insert_new(W, _head_values(workflow)), unique=lambda: AlreadyExists("workflow", workflow.slug)
            )
            if stored.first() is None:
                raise AlreadyExists("workflow", workflow.slug)
        else:
            # moving the newest version from n - 1 to n locks the row: concurrent revisions queue,
            # and the second finds version n taken
            moved = await self._execute(
                update(W)
                .where(W.c.id == workflow.id, W.c.tenant_id == workflow.tenant_id, W.c.version == workflow.version - 1)
                .values(version=workflow.version, status=workflow.status.value, updated_at=workflow.updated_at)
                .returning(W.c.id)
            )
            if moved.first() is None:
                found = (
                    await self._execute(
                        select(W.c.version).where(W.c.id == workflow.id, W.c.tenant_id == workflow.tenant_id)
                    )
                ).scalar()
                if found is not None and found >= workflow.version:
                    raise AlreadyExists("workflow version", f"{workflow.slug}@{workflow.version}")
                raise NotFound("workflow version", f"{workflow.slug}@{workflow.version - 1}")
        await self._execute(
            insert(V).values(_version_values(workflow)),
            unique=lambda: AlreadyExists("workflow version", f"{workflow.slug}@{workflow.version}"),
        )
        await self._replace_triggers(workflow)

    async def _replace_triggers(self, workflow: Workflow) -> None:
        """Make ``workflow_triggers`` hold the triggers of ``workflow`` (none unless active);
        a cron trigger that stays keeps its row, so its ``next_fire_at``."""
        wanted: dict[tuple[Any, ...], dict[str, Any]] = {}
        if workflow.status is WorkflowStatus.ACTIVE:
            for trigger in workflow.triggers:
                if trigger.kind is TriggerKind.MANUAL:
                    continue
                cron = trigger.cron
                values = {
                    "workflow_id": workflow.id,
                    "tenant_id": workflow.tenant_id,
                    "kind": trigger.kind.value,
                    "topic": trigger.topic,
                    "cron": cron.cron if cron else None,
                    "timezone": cron.timezone if cron else None,
                    "next_fire_at": cron.next_after(workflow.updated_at) if cron else None,
                }
                wanted.setdefault(
                    _trigger_key(values["kind"], values["topic"], values["cron"], values["timezone"]), values
                )
        rows = await self._execute(
            select(T.c.id, T.c.kind, T.c.topic, T.c.cron, T.c.timezone).where(T.c.workflow_id == workflow.id)
        )
        stale: list[str] = []
        for row in rows:
            key = _trigger_key(row.kind, row.topic, row.cron, row.timezone)
            if key in wanted:
                del wanted[key]
            else:
                stale.append(row.id)
        if stale:
            await self._execute(delete(T).where(T.c.id.in_(stale)))
        if wanted:
            await self._execute_many(insert(T), [{"id": new_id(), **values} for values in wanted.values()])

    async def get(self, slug: str, *, tenant_id: TenantId, version: int | None = None) -> Workflow:
        if version is None:
            statement = _newest().where(W.c.tenant_id == tenant_id, W.c.slug == slug)
        else:
            statement = (
                select(*_COLUMNS)
                .select_from(W.join(V, V.c.workflow_id == W.c.id))
                .where(W.c.tenant_id == tenant_id, W.c.slug == slug, V.c.version == version)
            )
        row = (await self._execute(statement)).first()
        if row is None:
            raise NotFound("workflow", slug if version is None else f"{slug}@{version}")
        return _to_workflow(row)

    async def get_by_id(
        self, workflow_id: WorkflowId, *, version: int | None = None, tenant_id: TenantId | None = None
    ) -> Workflow:
        if version is None:
            statement = _newest().where(W.c.id == workflow_id)
        else:
            statement = (
                select(*_COLUMNS)
                .select_from(W.join(V, V.c.workflow_id == W.c.id))
                .where(W.c.id == workflow_id, V.c.version == version)
            )
        if tenant_id is not None:
            statement = statement.where(W.c.tenant_id == tenant_id)
        row = (await self._execute(statement)).first()
        if row is None:
            raise NotFound("workflow", workflow_id if version is None else f"{workflow_id}@{version}")
        return _to_workflow(row)

    async def list(self, tenant_id: TenantId, query: WorkflowQuery) -> Page[Workflow]:
        statement = _newest().where(W.c.tenant_id == tenant_id)
        if query.status is None:
            statement = statement.where(W.c.status != WorkflowStatus.ARCHIVED.value)
        else:
            statement = statement.where(W.c.status == query.status.value)
        return await self._page(statement, at=W.c.created_at, id=W.c.id, page=query.page, to_entity=_to_workflow)

    async def update(self, workflow: Workflow) -> None:
        moved = await self._execute(
            update(W)
            .where(W.c.id == workflow.id, W.c.tenant_id == workflow.tenant_id, W.c.version == workflow.version)
            .values(status=workflow.status.value, updated_at=workflow.updated_at)
            .returning(W.c.id)
        )
        if moved.first() is None:
            found = (
                await self._execute(select(W.c.version).where(W.c.id == workflow.id, W.c.tenant_id == workflow.tenant_id))
            ).scalar()
            if found is None:
                raise NotFound("workflow", workflow.slug)
            raise Conflict(f"workflow {workflow.slug}: version {workflow.version} is not the newest ({found})")
        await self._replace_triggers(workflow)

    async def with_event_trigger(self, tenant_id: TenantId, topic: str) -> Sequence[Workflow]:
        candidates = await self._execute(
            select(T.c.workflow_id, T.c.topic).where(
                T.c.tenant_id == tenant_id,
                T.c.kind == TriggerKind.EVENT.value,
                or_(T.c.topic == topic, T.c.topic.like("%*%")),
            )
        )
        ids = {row.workflow_id for row in candidates if topic_matches(row.topic, topic)}
        if not ids:
            return []
        rows = await self._execute(
            _newest()
            .where(W.c.id.in_(ids), W.c.status == WorkflowStatus.ACTIVE.value)
            .order_by(W.c.created_at, W.c.id)
        )
        return [_to_workflow(row) for row in rows]

    async def due_cron(self, now: datetime, limit: int, *, lease: timedelta, owner: str) -> Sequence[CronTrigger]:
        """One statement, as endpoints are claimed: lock the due rows (skipping rows another
        claimer holds, on PostgreSQL), lease them, return them. SQLite holds the write lock."""
        if limit <= 0:
            return []
        due = (
            select(T.c.id)
            .where(
                T.c.kind == TriggerKind.CRON.value,
                T.c.next_fire_at <= now,
                or_(T.c.lease_expires_at.is_(None), T.c.lease_expires_at <= now),
            )
            .order_by(T.c.next_fire_at, T.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, key_share=True)
        )
        rows = await self._execute(
            update(T).where(T.c.id.in_(due)).values(claimed_by=owner, lease_expires_at=now + lease).returning(*T.c)
        )
        return sorted((_to_trigger(row) for row in rows), key=lambda t: (t.next_fire_at, t.id))

    async def fire_cron(self, trigger: CronTrigger, *, next_fire_at: datetime) -> bool:
        moved = await self._execute(
            update(T)
            .where(T.c.id == trigger.id, T.c.next_fire_at == trigger.next_fire_at)
            .values(next_fire_at=next_fire_at, claimed_by=None, lease_expires_at=None)
            .returning(T.c.id)
        )
        return moved.first() is not None

    async def next_cron_at(self) -> datetime | None:
        claimable = case(
            (T.c.lease_expires_at > T.c.next_fire_at, T.c.lease_expires_at), else_=T.c.next_fire_at
        )
        statement = select(func.min(claimable)).where(T.c.kind == TriggerKind.CRON.value)
        return (await self._execute(statement)).scalar()
