"""Clocks: the system clock and a settable one for tests and simulations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from attrs import define, field

from domain.validation import aware


class SystemClock:
    """The wall clock in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@define
class FixedClock:
    """A clock that moves only when told to (``advance``, ``set``)."""

    current: datetime = field(validator=aware)

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        self.current += delta
        return self.current

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        self.current = moment
