"""Events: an append-only record per tenant, numbered 1, 2, 3, … in the order they were recorded.

Ostinato records what happens to workflows (``workflow.run.started``,
``workflow.step.succeeded``, …) in the same transaction as the change, and
users publish topics of their own (``invoices.imported``), which may start
workflows whose event trigger names the topic. ``seq`` is assigned when an
event is appended: gap-free per tenant, and in commit order, so a reader that
asks for the events after the last ``seq`` it saw never misses one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, NewType

from attrs import evolve, field, frozen

from domain.errors import ValidationFailed
from domain.ids import TenantId, new_id
from domain.pagination import Cursor
from domain.validation import aware, non_empty_text
from domain.workflows import TOPIC_RE, json_problem

EventId = NewType("EventId", str)

PAYLOAD_LIMIT = 64 * 1024
"""Largest payload, in bytes of JSON."""

RESERVED_PREFIXES = ("workflow.", "job.", "endpoint.")
"""Topics Ostinato records itself; a user cannot publish them."""


def _check_topic(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not TOPIC_RE.match(value):
        raise ValidationFailed.field("topic", "must be 1-200 letters, digits or . _ : / * -, starting with a letter or digit")


def _check_payload(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ValidationFailed.field("payload", "must be an object")
    problem = json_problem(value)
    if problem:
        raise ValidationFailed.field("payload" + problem[0], problem[1])


def _check_seq(instance: Any, attribute: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationFailed.field("seq", "must be a whole number, 0 until the event is appended")


@frozen(kw_only=True)
class Event:
    """One recorded event; ``seq`` is 0 until the event is appended (see :meth:`numbered`)."""

    id: EventId
    tenant_id: TenantId = field(validator=non_empty_text(64))
    seq: int = field(default=0, validator=_check_seq)
    topic: str = field(validator=_check_topic)
    payload: dict[str, Any] = field(factory=dict, validator=_check_payload)
    at: datetime = field(validator=aware)

    @classmethod
    def new(cls, *, tenant_id: TenantId, topic: str, payload: Mapping[str, Any] | None = None, at: datetime) -> Event:
        """An event to append (``seq`` 0)."""
        return cls(id=EventId(new_id()), tenant_id=tenant_id, topic=topic, payload=dict(payload or {}), at=at)

    @classmethod
    def published(
        cls, *, tenant_id: TenantId, topic: Any, payload: Any, at: datetime
    ) -> Event:
        """An event a user publishes: a topic of their own (not a reserved one) and an object of
        at most :data:`PAYLOAD_LIMIT` bytes of JSON. Raises ``ValidationFailed`` naming each field."""
        errors = []
        try:
            _check_topic(None, None, topic)
            if topic.startswith(RESERVED_PREFIXES):
                raise ValidationFailed.field(
                    "topic", f"topics starting with {', '.join(RESERVED_PREFIXES)} are recorded by Ostinato itself"
                )
        except ValidationFailed as exc:
            errors.extend(exc.errors)
        payload = {} if payload is None else payload
        try:
            _check_payload(None, None, payload)
            if len(json.dumps(payload, separators=(",", ":"))) > PAYLOAD_LIMIT:
                raise ValidationFailed.field("payload", f"must be at most {PAYLOAD_LIMIT} bytes of JSON")
        except ValidationFailed as exc:
            errors.extend(exc.errors)
        if errors:
            raise ValidationFailed(errors)
        return cls.new(tenant_id=tenant_id, topic=topic, payload=payload, at=at)

    def numbered(self, seq: int) -> Event:
        """The event as appended, with its sequence number (1 or more)."""
        if seq < 1:
            raise ValidationFailed.field("seq", "must be at least 1")
        return evolve(self, seq=seq)


@lru_cache(maxsize=1024)
def _pattern(topic_pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in topic_pattern.split("*")) + "$")


def topic_matches(pattern: str, topic: str) -> bool:
    """True when an event trigger's ``pattern`` names ``topic``: equal, or equal with each ``*``
    in the pattern standing for any run of characters (``invoices.*`` names ``invoices.imported``)."""
    if "*" not in pattern:
        return pattern == topic
    return _pattern(pattern).match(topic) is not None


def cursor_after(event: Event) -> str:
    """The cursor of a page of events that ends with ``event``."""
    return Cursor(event.at, f"seq:{event.seq}").encode()


def seq_after(cursor: Cursor | None) -> int:
    """The sequence number a page of events continues after (0 without a cursor); raises
    ``ValidationFailed`` on ``cursor`` for a cursor of another list."""
    if cursor is None:
        return 0
    if cursor.id.startswith("seq:"):
        try:
            return max(0, int(cursor.id.removeprefix("seq:")))
        except ValueError:
            pass
    raise ValidationFailed.field("cursor", "is not a cursor this server issued")
