"""The governor: when an endpoint runs next, and why.

A pure function of an endpoint and the current time, so it is tested with
hypothesis and every adapter and process agrees on it.

Rules, in order:

1. An archived or indefinitely paused endpoint has no next run. A pause until
   a time wins over everything: planning starts from the end of the pause.
2. The baseline is the next cron slot, or ``now + interval``; an interval
   schedule backs off exponentially with consecutive failures
   (``interval * 2 ** failures``, at most :data:`FAILURE_BACKOFF_CAP` times).
3. A live interval hint replaces the baseline (``now + hint``).
4. A live one-shot hint wins when it is earlier.
5. The result is clamped to ``[now + min_interval, now + max_interval]`` and
   the source then says ``clamped-min`` or ``clamped-max``.
6. It is never in the past. Expired hints are ignored and reported for
   clearing; a one-shot hint is consumed when its run fires
   (:meth:`JobEndpoint.fired`), so it never fires twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from attrs import frozen

from domain.runs import RunSource
from domain.schedules import CronSchedule

if TYPE_CHECKING:
    from domain.endpoints import JobEndpoint

FAILURE_BACKOFF_CAP = 32


@frozen(kw_only=True)
class NextRun:
    """The governor's answer: ``at`` (``None``: not scheduled), its ``source``,
    and which expired hints the caller should clear."""

    at: datetime | None
    source: RunSource | None
    drop_interval_hint: bool = False
    drop_oneshot_hint: bool = False


def plan_next_run(endpoint: JobEndpoint, now: datetime) -> NextRun:
    """Plan ``endpoint``'s next run as of ``now`` (timezone-aware)."""
    from domain.endpoints import EndpointStatus

    drop_interval = endpoint.interval_hint is not None and not endpoint.interval_hint.live(now)
    drop_oneshot = endpoint.oneshot_hint is not None and not endpoint.oneshot_hint.live(now)

    if endpoint.status is not EndpointStatus.ACTIVE:
        return NextRun(at=None, source=None, drop_interval_hint=drop_interval, drop_oneshot_hint=drop_oneshot)

    start = now
    if endpoint.paused_until is not None and endpoint.paused_until > now:
        start = endpoint.paused_until

    interval_hint = endpoint.interval_hint if not drop_interval and endpoint.interval_hint else None
    oneshot_hint = endpoint.oneshot_hint if not drop_oneshot and endpoint.oneshot_hint else None

    if interval_hint is not None and interval_hint.live(start):
        at, source = start + interval_hint.interval, RunSource.HINT_INTERVAL
    elif isinstance(endpoint.schedule, CronSchedule):
        at, source = endpoint.schedule.next_after(start), RunSource.BASELINE_CRON
    else:
        factor = min(2 ** min(endpoint.failure_count, 16), FAILURE_BACKOFF_CAP)
        at, source = start + endpoint.schedule.interval * factor, RunSource.BASELINE_INTERVAL

    if oneshot_hint is not None and oneshot_hint.live(start) and oneshot_hint.run_at < at:
        at, source = max(oneshot_hint.run_at, start), RunSource.HINT_ONESHOT

    if endpoint.min_interval is not None and at < start + endpoint.min_interval:
        at, source = start + endpoint.min_interval, RunSource.CLAMPED_MIN
    if endpoint.max_interval is not None and at > start + endpoint.max_interval:
        at, source = start + endpoint.max_interval, RunSource.CLAMPED_MAX

    return NextRun(
        at=max(at, start),
        source=source,
        drop_interval_hint=drop_interval,
        drop_oneshot_hint=drop_oneshot,
    )


def within_bounds(endpoint: JobEndpoint, interval: timedelta) -> bool:
    """True when ``interval`` respects the endpoint's hard bounds."""
    if endpoint.min_interval is not None and interval < endpoint.min_interval:
        return False
    if endpoint.max_interval is not None and interval > endpoint.max_interval:
        return False
    return True
