"""Retry policy: how many attempts a run gets and how long to wait between them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from attrs import field, frozen

from domain.errors import ValidationFailed
from domain.validation import positive_duration, positive_int

MAX_ATTEMPTS_LIMIT = 100


def _check_attempts(instance: Any, attribute: Any, value: int) -> None:
    positive_int(instance, attribute, value)
    if value > MAX_ATTEMPTS_LIMIT:
        raise ValidationFailed.field(attribute.name, f"must be at most {MAX_ATTEMPTS_LIMIT}")


@frozen(kw_only=True)
class RetryPolicy:
    """Up to ``max_attempts`` attempts (1 means no retry), exponential backoff.

    The wait before attempt ``n + 1`` is ``backoff * 2 ** (n - 1)``, capped at
    ``backoff_max``; with ``jitter`` it is drawn from the upper half of that
    window ("equal jitter"), so retries of many runs spread out but never
    come sooner than half the nominal wait.
    """

    max_attempts: int = field(default=1, validator=_check_attempts)
    backoff: timedelta = field(default=timedelta(seconds=1), validator=positive_duration)
    backoff_max: timedelta = field(default=timedelta(minutes=5), validator=positive_duration)
    jitter: bool = True

    def __attrs_post_init__(self) -> None:
        if self.backoff_max < self.backoff:
            raise ValidationFailed.field("backoff_max", "must be at least backoff")

    def allows_another(self, attempt: int) -> bool:
        """True when a failed ``attempt`` (1-based) may be followed by another."""
        return attempt < self.max_attempts

    def delay(self, attempt: int, *, rand: float = 1.0) -> timedelta:
        """The wait after failed ``attempt``; ``rand`` in [0, 1] picks the jitter."""
        nominal = self.backoff
        for _ in range(max(attempt - 1, 0)):  # double up to the cap; 2**n would overflow timedelta
            if nominal >= self.backoff_max:
                break
            nominal *= 2
        nominal = min(nominal, self.backoff_max)
        if not self.jitter:
            return nominal
        rand = min(max(rand, 0.0), 1.0)
        return nominal / 2 + (nominal / 2) * rand
