"""The scheduling state of a workflow's cron triggers: when each fires next, and who claimed it.

A workflow's definition holds its triggers; this is what schedulers need on top:
one :class:`CronTrigger` per cron trigger of a workflow's newest version,
with ``next_fire_at``. Schedulers claim due triggers with a lease (as they
claim endpoints), start a run for the slot, and advance ``next_fire_at`` with
a compare-and-set on the slot, so a slot starts one run whatever the number
of schedulers.
"""

from __future__ import annotations

from datetime import datetime

from attrs import field, frozen

from domain.ids import TenantId
from domain.schedules import CronSchedule
from domain.validation import aware
from domain.workflows import TriggerKind, Workflow, WorkflowId


@frozen(kw_only=True)
class CronTrigger:
    """Workflow ``workflow_id``'s trigger on ``cron``; its next slot is ``next_fire_at`` (UTC)."""

    id: str
    tenant_id: TenantId
    workflow_id: WorkflowId
    cron: CronSchedule
    next_fire_at: datetime = field(validator=aware)
    claimed_by: str | None = None
    lease_expires_at: datetime | None = field(default=None, validator=aware)

    def following(self, now: datetime) -> datetime:
        """The slot after this one: the first after both the slot and ``now`` (missed slots are
        not caught up: a scheduler that was down fires the overdue slot once)."""
        return self.cron.next_after(max(now, self.next_fire_at))


def cron_schedules(workflow: Workflow) -> tuple[CronSchedule, ...]:
    """The schedules of ``workflow``'s cron triggers, in declared order (a trigger is identified
    by its expression and time zone: a revision that keeps one keeps its ``next_fire_at``)."""
    return tuple(trigger.cron for trigger in workflow.triggers if trigger.kind is TriggerKind.CRON and trigger.cron)


def event_topics(workflow: Workflow) -> tuple[str, ...]:
    """The topics (or ``*`` patterns) of ``workflow``'s event triggers."""
    return tuple(trigger.topic for trigger in workflow.triggers if trigger.kind is TriggerKind.EVENT and trigger.topic)
