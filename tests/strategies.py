"""Hypothesis strategies for Ostinato's domain, shared by every test tier.

    from tests.strategies import endpoints, moments

    @given(data=st.data(), now=moments())
    def test_something(data, now):
        endpoint = data.draw(endpoints(now))

Times are UTC and lie in 2024-2032, so cron iteration stays cheap. Hints,
pauses and leases are drawn relative to ``now``: each may be live, expired,
in the past or in the future.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from domain.endpoints import EndpointStatus, JobEndpoint
from domain.hints import IntervalHint, OneShotHint
from domain.ids import EndpointId, TenantId
from domain.retry import RetryPolicy
from domain.runs import RunSource
from domain.schedules import CronSchedule, IntervalSchedule
from domain.targets import HttpTarget, PythonTarget

UTC = timezone.utc
EARLIEST = datetime(2024, 1, 1)
LATEST = datetime(2032, 12, 31)

TIME_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
CRON_EXPRESSIONS = (
    "* * * * *",
    "*/5 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "0 0 * * *",
    "15 9 * * 1-5",
    "0 12 1 * *",
    "*/20 1-3 * * *",
    "0 0 * * 0",
)
PLANNED_SOURCES = frozenset(
    {
        RunSource.BASELINE_CRON,
        RunSource.BASELINE_INTERVAL,
        RunSource.HINT_INTERVAL,
        RunSource.HINT_ONESHOT,
        RunSource.CLAMPED_MIN,
        RunSource.CLAMPED_MAX,
    }
)


_MOMENTS = st.datetimes(min_value=EARLIEST, max_value=LATEST, timezones=st.just(UTC))
_NAMES = st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z")
_TARGETS = st.sampled_from(
    [HttpTarget(url="https://example.com/hook"), PythonTarget(handler="billing.sync", params={"full": True})]
)
_RETRIES = st.sampled_from([RetryPolicy(), RetryPolicy(max_attempts=3, jitter=False)])
_PRIORITIES = st.integers(0, 9)
_FAILURES = st.integers(0, 40)
_BOOLEANS = st.booleans()
_UUIDS = st.uuids()
_REASONS = st.sampled_from(["", "backlog", "advisor: quiet night"])
_MAYBE = st.booleans()


def moments() -> st.SearchStrategy[datetime]:
    """Aware UTC datetimes with microseconds."""
    return _MOMENTS


def durations(min_seconds: int = 1, max_seconds: int = 7 * 24 * 3600) -> st.SearchStrategy[timedelta]:
    """Positive durations in whole seconds."""
    return st.integers(min_seconds, max_seconds).map(lambda s: timedelta(seconds=s))


def interval_schedules(max_seconds: int = 24 * 3600) -> st.SearchStrategy[IntervalSchedule]:
    return durations(1, max_seconds).map(lambda d: IntervalSchedule(interval=d))


def cron_schedules(
    expressions: tuple[str, ...] = CRON_EXPRESSIONS, zones: tuple[str, ...] = TIME_ZONES
) -> st.SearchStrategy[CronSchedule]:
    return st.builds(CronSchedule, cron=st.sampled_from(expressions), timezone=st.sampled_from(zones))


_SCHEDULES = st.one_of(interval_schedules(), cron_schedules())


def schedules() -> st.SearchStrategy[IntervalSchedule | CronSchedule]:
    return _SCHEDULES


_LOW = st.none() | durations(1, 6 * 3600)
_HIGH = st.none() | durations(1, 3 * 24 * 3600)


@st.composite
def bounds(draw: st.DrawFn) -> tuple[timedelta | None, timedelta | None]:
    """``(min_interval, max_interval)``, each optional, with ``min <= max`` when both are set."""
    low, high = draw(_LOW), draw(_HIGH)
    if low is not None and high is not None and low > high:
        low, high = high, low
    return low, high


_BOUNDS = bounds()
_SECONDS = st.integers(0, 3 * 24 * 3600)


def _around(draw: st.DrawFn, now: datetime, *, past: bool = True, future: bool = True) -> datetime:
    """A moment at most three days before (or at) ``now``, or after it."""
    seconds = draw(_SECONDS)
    forward = future and (not past or draw(_BOOLEANS))
    return now + timedelta(seconds=seconds + 1) if forward else now - timedelta(seconds=seconds)


@st.composite
def relative_to(draw: st.DrawFn, now: datetime, *, past: bool = True, future: bool = True) -> datetime:
    """A moment around ``now``: before it (or equal), after it, or either."""
    return _around(draw, now, past=past, future=future)


@st.composite
def interval_hints(draw: st.DrawFn, now: datetime, *, live: bool | None = None, within: tuple[timedelta | None, timedelta | None] = (None, None)) -> IntervalHint:
    """An interval hint that is live at ``now`` (``live=True``), expired (``False``) or either,
    with its interval inside ``within`` (``(min, max)``)."""
    low, high = within
    low_s = int(low.total_seconds()) if low else 1
    high_s = int(high.total_seconds()) if high else 2 * 24 * 3600
    interval = timedelta(seconds=draw(st.integers(max(low_s, 1), max(high_s, low_s, 1))))
    if live is None:
        live = draw(_BOOLEANS)
    expires = _around(draw, now, past=not live, future=live)
    return IntervalHint(interval=interval, expires_at=expires, reason=draw(_REASONS))


@st.composite
def oneshot_hints(draw: st.DrawFn, now: datetime, *, live: bool | None = None) -> OneShotHint:
    """A one-shot hint whose ``run_at`` is before, at or after ``now`` and not after its expiry."""
    if live is None:
        live = draw(_BOOLEANS)
    if live:
        run_at = _around(draw, now)
        expires = max(run_at, now) + timedelta(seconds=draw(_SECONDS) + 1)
    else:
        expires = _around(draw, now, future=False)
        run_at = expires - timedelta(seconds=draw(_SECONDS))
    return OneShotHint(run_at=run_at, expires_at=expires, reason=draw(_REASONS))


@st.composite
def endpoints(
    draw: st.DrawFn,
    now: datetime,
    *,
    schedule: st.SearchStrategy[Any] | None = None,
    statuses: tuple[EndpointStatus, ...] = tuple(EndpointStatus),
    with_bounds: bool = True,
    with_hints: bool = True,
    with_pause: bool = True,
    with_failures: bool = True,
) -> JobEndpoint:
    """A valid endpoint as it might be stored at ``now``: any schedule, optional bounds,
    live or expired hints, a past or future ``paused_until``, consecutive failures."""
    low, high = draw(_BOUNDS) if with_bounds else (None, None)
    interval_hint = draw(interval_hints(now, within=(low, high))) if with_hints and draw(_MAYBE) else None
    oneshot_hint = draw(oneshot_hints(now)) if with_hints and draw(_MAYBE) else None
    paused_until = _around(draw, now) if with_pause and draw(_MAYBE) else None
    return JobEndpoint(
        id=EndpointId(str(draw(_UUIDS))),
        tenant_id=TenantId("acme"),
        name=draw(_NAMES),
        target=draw(_TARGETS),
        schedule=draw(schedule if schedule is not None else _SCHEDULES),
        min_interval=low,
        max_interval=high,
        retry=draw(_RETRIES),
        priority=draw(_PRIORITIES),
        interval_hint=interval_hint,
        oneshot_hint=oneshot_hint,
        status=draw(st.sampled_from(statuses)),
        paused_until=paused_until,
        failure_count=draw(_FAILURES) if with_failures else 0,
        created_at=now - timedelta(days=30),
        updated_at=now - timedelta(days=1),
    )


@st.composite
def endpoints_with_now(draw: st.DrawFn, **kwargs: Any) -> tuple[JobEndpoint, datetime]:
    """``(endpoint, now)``: an endpoint drawn by :func:`endpoints` and the moment it is planned at."""
    now = draw(moments())
    return draw(endpoints(now, **kwargs)), now
