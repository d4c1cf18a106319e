"""The governor: when an endpoint runs next and why (``domain.governor.plan_next_run``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from attrs import evolve
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.endpoints import EndpointStatus, JobEndpoint
from domain.governor import FAILURE_BACKOFF_CAP, plan_next_run
from domain.hints import IntervalHint, OneShotHint
from domain.runs import RunSource
from domain.schedules import CronSchedule, IntervalSchedule
from tests.builders import an_endpoint
from tests.strategies import (
    PLANNED_SOURCES,
    cron_schedules,
    durations,
    endpoints,
    endpoints_with_now,
    interval_hints,
    interval_schedules,
    moments,
    oneshot_hints,
    relative_to,
)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def start_of(endpoint: JobEndpoint, now: datetime) -> datetime:
    return max(now, endpoint.paused_until) if endpoint.paused_until is not None else now


def every(interval: timedelta, **overrides) -> JobEndpoint:
    return an_endpoint(schedule=IntervalSchedule(interval=interval), **overrides)


def cron(expression: str, zone: str = "UTC", **overrides) -> JobEndpoint:
    return an_endpoint(schedule=CronSchedule(cron=expression, timezone=zone), **overrides)


# -- properties over every kind of endpoint ---------------------------------------------


@given(endpoints_with_now())
def test_the_next_run_is_never_in_the_past(case):
    endpoint, now = case
    plan = plan_next_run(endpoint, now)
    assert plan.at is None or plan.at >= now


@given(endpoints_with_now())
def test_the_next_run_lies_within_the_hard_bounds_counted_from_the_end_of_any_pause(case):
    endpoint, now = case
    plan = plan_next_run(endpoint, now)
    assume(plan.at is not None)
    start = start_of(endpoint, now)
    assert plan.at >= start
    if endpoint.min_interval is not None:
        assert plan.at >= start + endpoint.min_interval
    if endpoint.max_interval is not None:
        assert plan.at <= start + endpoint.max_interval


@given(endpoints_with_now())
def test_an_active_endpoint_always_has_a_next_run_with_a_planned_source(case):
    endpoint, now = case
    plan = plan_next_run(endpoint, now)
    if endpoint.status is EndpointStatus.ACTIVE:
        assert plan.at is not None
        assert plan.source in PLANNED_SOURCES
    else:
        assert plan.at is None and plan.source is None


@given(endpoints_with_now(statuses=(EndpointStatus.PAUSED, EndpointStatus.ARCHIVED)))
def test_an_indefinitely_paused_or_archived_endpoint_has_no_next_run(case):
    endpoint, now = case
    plan = plan_next_run(endpoint, now)
    assert plan.at is None
    assert plan.source is None
    assert endpoint.replanned(now).next_run_at is None


@given(st.data(), moments())
def test_a_pause_until_a_later_time_wins_over_hints_and_baseline(data, now):
    endpoint = data.draw(endpoints(now, statuses=(EndpointStatus.ACTIVE,), with_pause=False))
    until = data.draw(relative_to(now, past=False))
    plan = plan_next_run(evolve(endpoint, paused_until=until), now)
    assert plan.at is not None
    assert plan.at >= until


@given(st.data(), moments())
def test_a_pause_that_already_ended_changes_nothing(data, now):
    endpoint = data.draw(endpoints(now, statuses=(EndpointStatus.ACTIVE,), with_pause=False))
    ended = data.draw(relative_to(now, future=False))
    assert plan_next_run(evolve(endpoint, paused_until=ended), now) == plan_next_run(endpoint, now)


@given(st.data(), moments())
def test_an_expired_interval_hint_is_ignored_and_reported_for_clearing(data, now):
    endpoint = data.draw(endpoints(now))
    hint = data.draw(interval_hints(now, live=False))
    with_hint = evolve(endpoint, interval_hint=hint)
    plan = plan_next_run(with_hint, now)
    without = plan_next_run(evolve(endpoint, interval_hint=None), now)
    assert (plan.at, plan.source) == (without.at, without.source)
    assert plan.drop_interval_hint is True
    assert with_hint.replanned(now).interval_hint is None


@given(st.data(), moments())
def test_an_expired_oneshot_hint_is_ignored_and_reported_for_clearing(data, now):
    endpoint = data.draw(endpoints(now))
    hint = data.draw(oneshot_hints(now, live=False))
    with_hint = evolve(endpoint, oneshot_hint=hint)
    plan = plan_next_run(with_hint, now)
    without = plan_next_run(evolve(endpoint, oneshot_hint=None), now)
    assert (plan.at, plan.source) == (without.at, without.source)
    assert plan.drop_oneshot_hint is True
    assert with_hint.replanned(now).oneshot_hint is None


@given(endpoints_with_now())
def test_live_hints_are_kept_by_replanning(case):
    endpoint, now = case
    replanned = endpoint.replanned(now)
    if endpoint.interval_hint is not None and endpoint.interval_hint.live(now):
        assert replanned.interval_hint == endpoint.interval_hint
    if endpoint.oneshot_hint is not None and endpoint.oneshot_hint.live(now):
        assert replanned.oneshot_hint == endpoint.oneshot_hint


@given(endpoints_with_now(statuses=(EndpointStatus.ACTIVE,)))
def test_the_source_says_how_the_time_was_chosen(case):
    endpoint, now = case
    plan = plan_next_run(endpoint, now)
    start = start_of(endpoint, now)
    if plan.source is RunSource.CLAMPED_MIN:
        assert plan.at == start + endpoint.min_interval
    elif plan.source is RunSource.CLAMPED_MAX:
        assert plan.at == start + endpoint.max_interval
    elif plan.source is RunSource.HINT_INTERVAL:
        assert endpoint.interval_hint is not None and endpoint.interval_hint.live(start)
        assert plan.at == start + endpoint.interval_hint.interval
    elif plan.source is RunSource.HINT_ONESHOT:
        assert endpoint.oneshot_hint is not None and endpoint.oneshot_hint.live(start)
        assert plan.at == max(endpoint.oneshot_hint.run_at, start)
    elif plan.source is RunSource.BASELINE_CRON:
        assert isinstance(endpoint.schedule, CronSchedule)
        assert plan.at == endpoint.schedule.next_after(start)
    else:
        assert plan.source is RunSource.BASELINE_INTERVAL
        assert isinstance(endpoint.schedule, IntervalSchedule)
        factor = min(2**endpoint.failure_count, FAILURE_BACKOFF_CAP)
        assert plan.at == start + endpoint.schedule.interval * factor


@given(st.data(), moments())
def test_without_hints_or_bounds_the_source_is_the_baseline(data, now):
    endpoint = data.draw(endpoints(now, statuses=(EndpointStatus.ACTIVE,), with_bounds=False, with_hints=False))
    plan = plan_next_run(endpoint, now)
    expected = RunSource.BASELINE_CRON if isinstance(endpoint.schedule, CronSchedule) else RunSource.BASELINE_INTERVAL
    assert plan.source is expected


@given(st.data(), moments())
def test_a_live_interval_hint_replaces_the_baseline(data, now):
    endpoint = data.draw(endpoints(now, statuses=(EndpointStatus.ACTIVE,), with_bounds=False, with_pause=False))
    hint = data.draw(interval_hints(now, live=True))
    plan = plan_next_run(evolve(endpoint, interval_hint=hint, oneshot_hint=None), now)
    assert (plan.at, plan.source) == (now + hint.interval, RunSource.HINT_INTERVAL)


@given(st.data(), moments())
def test_a_live_oneshot_hint_wins_only_when_it_is_earlier(data, now):
    endpoint = data.draw(endpoints(now, statuses=(EndpointStatus.ACTIVE,), with_bounds=False, with_pause=False, with_hints=False))
    hint = data.draw(oneshot_hints(now, live=True))
    baseline = plan_next_run(endpoint, now)
    plan = plan_next_run(evolve(endpoint, oneshot_hint=hint), now)
    if hint.run_at < baseline.at:
        assert (plan.at, plan.source) == (max(hint.run_at, now), RunSource.HINT_ONESHOT)
    else:
        assert (plan.at, plan.source) == (baseline.at, baseline.source)


@given(st.data(), moments())
def test_a_spent_oneshot_hint_never_fires_twice(data, now):
    # Given an active endpoint with a live one-shot hint
    endpoint = data.draw(endpoints(now, statuses=(EndpointStatus.ACTIVE,), with_pause=False))
    hint = data.draw(oneshot_hints(now, live=True))
    endpoint = evolve(endpoint, oneshot_hint=hint).replanned(now)
    # When it fires at each planned time, a few times over
    oneshot_runs = 0
    clock = now
    for _ in range(4):
        fired_at = endpoint.next_run_at
        assert fired_at is not None
        clock = max(clock, fired_at)
        oneshot_runs += endpoint.next_run_source is RunSource.HINT_ONESHOT
        endpoint = endpoint.fired(now=clock)
        # Then once a run has fired at or after the hint's time, the hint is gone
        if fired_at >= hint.run_at:
            assert endpoint.oneshot_hint is None
            assert endpoint.next_run_source is not RunSource.HINT_ONESHOT
    assert oneshot_runs <= 1


def test_firing_a_oneshot_run_consumes_the_hint():
    hint = OneShotHint(run_at=NOW + 5 * MINUTE, expires_at=NOW + HOUR)
    endpoint = every(HOUR).set_oneshot_hint(hint, now=NOW)
    assert (endpoint.next_run_at, endpoint.next_run_source) == (NOW + 5 * MINUTE, RunSource.HINT_ONESHOT)

    after = endpoint.fired(now=NOW + 5 * MINUTE)

    assert after.oneshot_hint is None
    assert after.last_run_at == NOW + 5 * MINUTE
    assert (after.next_run_at, after.next_run_source) == (NOW + 5 * MINUTE + HOUR, RunSource.BASELINE_INTERVAL)


def test_a_oneshot_run_pushed_later_by_the_minimum_interval_still_consumes_the_hint():
    hint = OneShotHint(run_at=NOW + MINUTE, expires_at=NOW + 6 * HOUR)
    endpoint = every(HOUR, min_interval=10 * MINUTE).set_oneshot_hint(hint, now=NOW)
    assert (endpoint.next_run_at, endpoint.next_run_source) == (NOW + 10 * MINUTE, RunSource.CLAMPED_MIN)

    after = endpoint.fired(now=NOW + 10 * MINUTE)

    assert after.oneshot_hint is None
    assert (after.next_run_at, after.next_run_source) == (NOW + 10 * MINUTE + HOUR, RunSource.BASELINE_INTERVAL)


def test_a_baseline_run_before_the_oneshot_time_keeps_the_hint():
    hint = OneShotHint(run_at=NOW + 3 * HOUR, expires_at=NOW + 6 * HOUR)
    endpoint = every(HOUR).set_oneshot_hint(hint, now=NOW)
    assert endpoint.next_run_source is RunSource.BASELINE_INTERVAL

    after = endpoint.fired(now=NOW + HOUR)

    assert after.oneshot_hint == hint


# -- each source, by example ---------------------------------------------------------------


def test_an_interval_schedule_runs_one_interval_from_now():
    plan = plan_next_run(every(10 * MINUTE), NOW)
    assert (plan.at, plan.source) == (NOW + 10 * MINUTE, RunSource.BASELINE_INTERVAL)


def test_a_cron_schedule_runs_at_its_next_slot_in_its_time_zone():
    plan = plan_next_run(cron("0 9 * * *", "Europe/Berlin"), NOW)  # 12:00 UTC = 13:00 Berlin
    assert (plan.at, plan.source) == (datetime(2026, 1, 6, 8, 0, tzinfo=UTC), RunSource.BASELINE_CRON)


def test_a_cron_slot_exactly_now_is_not_planned_again():
    plan = plan_next_run(cron("0 12 * * *"), NOW)
    assert plan.at == NOW + timedelta(days=1)


def test_an_interval_hint_replaces_the_baseline_interval():
    endpoint = every(HOUR).set_interval_hint(IntervalHint(interval=5 * MINUTE, expires_at=NOW + HOUR), now=NOW)
    assert (endpoint.next_run_at, endpoint.next_run_source) == (NOW + 5 * MINUTE, RunSource.HINT_INTERVAL)


def test_an_interval_hint_replaces_a_cron_baseline_too():
    endpoint = cron("0 0 * * *").set_interval_hint(IntervalHint(interval=15 * MINUTE, expires_at=NOW + HOUR), now=NOW)
    assert (endpoint.next_run_at, endpoint.next_run_source) == (NOW + 15 * MINUTE, RunSource.HINT_INTERVAL)


def test_a_oneshot_hint_in_the_past_that_is_still_live_runs_now():
    hint = OneShotHint(run_at=NOW - HOUR, expires_at=NOW + HOUR)
    plan = plan_next_run(every(HOUR, oneshot_hint=hint), NOW)
    assert (plan.at, plan.source) == (NOW, RunSource.HINT_ONESHOT)


def test_a_run_sooner_than_the_minimum_interval_is_clamped_up():
    plan = plan_next_run(every(MINUTE, min_interval=5 * MINUTE), NOW)
    assert (plan.at, plan.source) == (NOW + 5 * MINUTE, RunSource.CLAMPED_MIN)


def test_a_run_later_than_the_maximum_interval_is_clamped_down():
    plan = plan_next_run(cron("0 0 1 * *", max_interval=HOUR), NOW)
    assert (plan.at, plan.source) == (NOW + HOUR, RunSource.CLAMPED_MAX)


def test_a_run_exactly_on_a_bound_is_not_called_clamped():
    plan = plan_next_run(every(HOUR, min_interval=HOUR, max_interval=HOUR), NOW)
    assert (plan.at, plan.source) == (NOW + HOUR, RunSource.BASELINE_INTERVAL)


def test_bounds_count_from_the_end_of_a_pause():
    until = NOW + 2 * HOUR
    plan = plan_next_run(every(MINUTE, min_interval=10 * MINUTE, paused_until=until), NOW)
    assert (plan.at, plan.source) == (until + 10 * MINUTE, RunSource.CLAMPED_MIN)


def test_an_interval_hint_that_expires_during_a_pause_is_not_used_after_it():
    hint = IntervalHint(interval=MINUTE, expires_at=NOW + HOUR)
    plan = plan_next_run(every(10 * MINUTE, interval_hint=hint, paused_until=NOW + 2 * HOUR), NOW)
    assert (plan.at, plan.source) == (NOW + 2 * HOUR + 10 * MINUTE, RunSource.BASELINE_INTERVAL)


def test_pausing_until_a_time_plans_after_it_and_resuming_plans_from_now():
    endpoint = every(MINUTE).pause(now=NOW, until=NOW + HOUR)
    assert endpoint.next_run_at == NOW + HOUR + MINUTE
    assert endpoint.resume(now=NOW).next_run_at == NOW + MINUTE


def test_pausing_indefinitely_clears_the_next_run():
    endpoint = every(MINUTE).pause(now=NOW)
    assert endpoint.status is EndpointStatus.PAUSED
    assert (endpoint.next_run_at, endpoint.next_run_source) == (None, None)


def test_an_interval_hint_outside_the_bounds_is_refused_naming_interval():
    from domain.errors import ValidationFailed

    endpoint = every(HOUR, min_interval=10 * MINUTE, max_interval=2 * HOUR)
    for interval in (MINUTE, 3 * HOUR):
        with pytest.raises(ValidationFailed) as raised:
            endpoint.set_interval_hint(IntervalHint(interval=interval, expires_at=NOW + HOUR), now=NOW)
        assert [e.path for e in raised.value.errors] == ["interval"]


# -- failure backoff ---------------------------------------------------------------------


@given(interval_schedules(max_seconds=3600), st.integers(0, 60), moments())
def test_interval_failure_backoff_doubles_per_failure_up_to_its_cap(schedule, failures, now):
    endpoint = an_endpoint(schedule=schedule, failure_count=failures)
    fewer = an_endpoint(schedule=schedule, failure_count=max(failures - 1, 0))
    delay = plan_next_run(endpoint, now).at - now
    assert delay == schedule.interval * min(2**failures, FAILURE_BACKOFF_CAP)
    assert delay >= plan_next_run(fewer, now).at - now
    assert delay <= schedule.interval * FAILURE_BACKOFF_CAP


def test_backoff_is_capped_even_for_a_huge_failure_count():
    plan = plan_next_run(every(MINUTE, failure_count=10_000), NOW)
    assert plan.at == NOW + MINUTE * FAILURE_BACKOFF_CAP


def test_recording_failures_backs_off_and_success_restores_the_cadence():
    endpoint = every(MINUTE)
    for _ in range(3):
        endpoint = endpoint.record_failure(now=NOW)
    assert endpoint.failure_count == 3
    assert endpoint.next_run_at == NOW + 8 * MINUTE
    endpoint = endpoint.record_success(now=NOW)
    assert (endpoint.failure_count, endpoint.next_run_at) == (0, NOW + MINUTE)


def test_a_cron_schedule_does_not_back_off_on_failures():
    healthy = plan_next_run(cron("*/5 * * * *"), NOW)
    failing = plan_next_run(cron("*/5 * * * *", failure_count=7), NOW)
    assert failing.at == healthy.at == NOW + 5 * MINUTE


def test_an_endpoint_auto_pauses_after_the_configured_failures():
    endpoint = every(MINUTE, auto_pause_after=2).record_failure(now=NOW)
    assert endpoint.status is EndpointStatus.ACTIVE
    endpoint = endpoint.record_failure(now=NOW)
    assert endpoint.status is EndpointStatus.PAUSED
    assert endpoint.next_run_at is None


# -- cron across daylight saving time ----------------------------------------------------------


def firings(schedule: CronSchedule, start: datetime, end: datetime) -> list[datetime]:
    """Every slot the governor plans from ``start`` up to ``end``, firing each as it comes."""
    endpoint = an_endpoint(schedule=schedule).replanned(start)
    found = []
    while endpoint.next_run_at < end:
        found.append(endpoint.next_run_at)
        endpoint = endpoint.fired(now=endpoint.next_run_at)
    return found


def berlin_day(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=BERLIN)
    end = start + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
    return start.astimezone(UTC) - timedelta(microseconds=1), end.astimezone(UTC) - timedelta(microseconds=1)


SPRING_FORWARD = date(2026, 3, 29)  # 02:00 -> 03:00 in Berlin
FALL_BACK = date(2026, 10, 25)  # 03:00 -> 02:00 in Berlin


def test_a_slot_in_the_skipped_hour_fires_once_when_the_hour_resumes():
    slots = firings(CronSchedule(cron="30 2 * * *", timezone="Europe/Berlin"), *berlin_day(SPRING_FORWARD))
    assert [s.astimezone(BERLIN).strftime("%H:%M%z") for s in slots] == ["03:00+0200"]


def test_a_slot_in_the_repeated_hour_fires_once():
    slots = firings(CronSchedule(cron="30 2 * * *", timezone="Europe/Berlin"), *berlin_day(FALL_BACK))
    assert len(slots) == 1
    assert slots[0].astimezone(BERLIN).strftime("%H:%M") == "02:30"


def test_an_hourly_schedule_has_23_slots_on_spring_forward_and_25_on_fall_back():
    hourly = CronSchedule(cron="0 * * * *", timezone="Europe/Berlin")
    spring = firings(hourly, *berlin_day(SPRING_FORWARD))
    autumn = firings(hourly, *berlin_day(FALL_BACK))
    assert len(spring) == 23 and len(set(spring)) == 23
    assert len(autumn) == 25 and len(set(autumn)) == 25
    assert all(later - earlier == HOUR for earlier, later in zip(autumn, autumn[1:]))


@given(st.integers(0, 23), st.integers(0, 59), st.sampled_from([SPRING_FORWARD, FALL_BACK]), st.integers(-2, 2))
def test_a_daily_berlin_slot_fires_exactly_once_on_each_day_around_the_transitions(hour, minute, transition, offset):
    day = transition + timedelta(days=offset)
    slots = firings(CronSchedule(cron=f"{minute} {hour} * * *", timezone="Europe/Berlin"), *berlin_day(day))
    assert len(slots) == 1
    local = slots[0].astimezone(BERLIN)
    assert local.date() == day
    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)
    exists = wall.astimezone(UTC).astimezone(BERLIN).replace(tzinfo=None) == wall.replace(tzinfo=None)
    if exists:
        assert (local.hour, local.minute) == (hour, minute)
        assert slots[0] == wall.astimezone(UTC)  # the first of two readings of a repeated time
    else:
        assert (local.hour, local.minute) == (3, 0)


@given(cron_schedules(), moments())
def test_cron_slots_strictly_increase_and_never_repeat(schedule, start):
    slots = []
    moment = start
    for _ in range(6):
        moment = schedule.next_after(moment)
        slots.append(moment)
    assert slots == sorted(set(slots))
    assert slots[0] > start
    assert all(slot.second == 0 and slot.microsecond == 0 for slot in slots)


@given(
    cron_schedules(expressions=("0 * * * *", "30 2 * * *", "*/20 1-3 * * *", "15,45 2 * * *", "0 3 * * *"), zones=("Europe/Berlin",)),
    st.sampled_from([SPRING_FORWARD, FALL_BACK]),
    durations(1, 24 * 3600),
)
def test_replanning_at_any_moment_never_yields_a_slot_that_the_full_sequence_lacks(schedule, transition, into):
    # The scheduler may replan late (after a restart); the slot it then picks must be one cron means.
    day_start, day_end = berlin_day(transition)
    canonical = set(firings(schedule, day_start - timedelta(days=1), day_end + timedelta(days=1)))
    assert schedule.next_after(day_start + into) in canonical
