"""Baseline schedules: a cron expression in a time zone, or a fixed interval."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import field, frozen
from cronsim import CronSim, CronSimError

from domain.errors import ValidationFailed
from domain.validation import positive_duration


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises ``ValidationFailed`` on ``timezone`` if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationFailed.field("timezone", f"unknown time zone {name!r}") from None


def _check_cron(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str):
        raise ValidationFailed.field("cron", "must be a string")
    fields = value.split()
    if len(fields) != 5:
        raise ValidationFailed.field("cron", f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    try:
        CronSim(value, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValidationFailed.field("cron", f"invalid expression {value!r}: {exc}") from None


def _check_zone(instance: Any, attribute: Any, value: str) -> None:
    zone(value)


@frozen(kw_only=True)
class CronSchedule:
    """Fire at each slot of a five-field cron ``expression`` read in ``timezone``.

    Slots follow the expression's local wall-clock meaning across daylight
    saving changes (as cron does): a slot in a skipped hour runs when the
    hour resumes, a slot in a repeated hour runs once.
    """

    cron: str = field(validator=_check_cron)
    timezone: str = field(default="UTC", validator=_check_zone)

    def next_after(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment``, in UTC."""
        local = moment.astimezone(zone(self.timezone))
        # cronsim works at whole-minute resolution and may return ``moment`` itself.
        for slot in CronSim(self.cron, local):
            slot_utc = slot.astimezone(timezone.utc)
            if slot_utc > moment:
                return slot_utc
        raise ValidationFailed.field("cron", "expression never fires")  # pragma: no cover


@frozen(kw_only=True)
class IntervalSchedule:
    """Fire every ``interval`` (a positive duration)."""

    interval: timedelta = field(validator=positive_duration)


Schedule = CronSchedule | IntervalSchedule
