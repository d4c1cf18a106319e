"""Hints: temporary, bounded changes to an endpoint's cadence set by an operator or the advisor."""

from __future__ import annotations

from datetime import datetime, timedelta

from attrs import field, frozen

from domain.validation import aware, positive_duration, text


@frozen(kw_only=True)
class IntervalHint:
    """Run every ``interval`` instead of the baseline until ``expires_at``."""

    interval: timedelta = field(validator=positive_duration)
    expires_at: datetime = field(validator=aware)
    reason: str = field(default="", validator=text(500))

    def live(self, now: datetime) -> bool:
        return self.expires_at > now


@frozen(kw_only=True)
class OneShotHint:
    """Run once at ``run_at`` if that is earlier than the baseline; void after ``expires_at``."""

    run_at: datetime = field(validator=aware)
    expires_at: datetime = field(validator=aware)
    reason: str = field(default="", validator=text(500))

    def live(self, now: datetime) -> bool:
        return self.expires_at > now
