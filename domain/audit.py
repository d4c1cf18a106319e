"""The audit trail: who changed what in a tenant, and when.

Every mutating API request leaves one :class:`AuditEntry`, written in the
same transaction as the change it describes, so the trail and the state
never disagree. Entries are append-only.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NewType

from attrs import field, frozen

from domain.errors import ValidationFailed
from domain.ids import TenantId, new_id
from domain.pagination import PageRequest
from domain.validation import aware, non_empty_text

AuditId = NewType("AuditId", str)

ACTION_RE = re.compile(r"^[a-z][a-z0-9_-]*(?:\.[a-z][a-z0-9_-]*)+$")
KIND_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def _check_action(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or len(value) > 100 or not ACTION_RE.match(value):
        raise ValidationFailed.field(attribute.name, "must be dotted lowercase words such as 'job.create'")


def _check_kind(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not KIND_RE.match(value):
        raise ValidationFailed.field(attribute.name, "must be a lowercase word such as 'job'")


def _check_summary(instance: Any, attribute: Any, value: Any) -> None:
    def walk(item: Any, path: str) -> None:
        if item is None or isinstance(item, (str, bool, int, float)):
            return
        if isinstance(item, list):
            for index, element in enumerate(item):
                walk(element, f"{path}[{index}]")
            return
        if isinstance(item, dict):
            for key, element in item.items():
                if not isinstance(key, str):
                    raise ValidationFailed.field(path, "object keys must be strings")
                walk(element, f"{path}.{key}")
            return
        raise ValidationFailed.field(path, f"must be JSON, not {type(item).__name__}")

    if not isinstance(value, dict):
        raise ValidationFailed.field(attribute.name, "must be an object")
    walk(value, attribute.name)


@frozen(kw_only=True)
class AuditEntry:
    """One change: the tenant, the token that asked (``None``: the system or the CLI),
    the ``action`` (``endpoint.pause``), its target, a JSON ``summary`` and the time."""

    id: AuditId
    tenant_id: TenantId = field(validator=non_empty_text(64))
    token_id: str | None = None
    action: str = field(validator=_check_action)
    target_kind: str = field(validator=_check_kind)
    target_id: str | None = None
    summary: dict[str, Any] = field(factory=dict, validator=_check_summary)
    at: datetime = field(validator=aware)

    @classmethod
    def record(
        cls,
        *,
        tenant_id: TenantId,
        token_id: str | None,
        action: str,
        target_kind: str,
        target_id: str | None,
        summary: dict[str, Any] | None = None,
        at: datetime,
    ) -> AuditEntry:
        return cls(
            id=AuditId(new_id()),
            tenant_id=tenant_id,
            token_id=token_id,
            action=action,
            target_kind=target_kind,
            target_id=target_id,
            summary=dict(summary or {}),
            at=at,
        )


@frozen(kw_only=True)
class AuditQuery:
    """Entries newest first by ``at``; ``since`` is inclusive and ``until`` exclusive.
    ``action`` matches exactly, or every action under a prefix when it ends in ``.*``
    (``endpoint.*``)."""

    action: str | None = None
    target_kind: str | None = None
    target_id: str | None = None
    token_id: str | None = None
    since: datetime | None = field(default=None, validator=aware)
    until: datetime | None = field(default=None, validator=aware)
    page: PageRequest = field(factory=PageRequest)

    def matches(self, entry: AuditEntry) -> bool:
        """True when ``entry`` passes every filter (the page aside); adapters that filter in Python use it."""
        if self.action is not None:
            if self.action.endswith(".*"):
                if not entry.action.startswith(self.action[:-1]):
                    return False
            elif entry.action != self.action:
                return False
        return (
            (self.target_kind is None or entry.target_kind == self.target_kind)
            and (self.target_id is None or entry.target_id == self.target_id)
            and (self.token_id is None or entry.token_id == self.token_id)
            and (self.since is None or entry.at >= self.since)
            and (self.until is None or entry.at < self.until)
        )
