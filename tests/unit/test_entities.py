"""Entity and value-object validation, lifecycles, and the public vocabulary (``domain.specs``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from attrs import evolve
from hypothesis import given
from hypothesis import strategies as st

from domain.endpoints import EndpointStatus, JobEndpoint
from domain.errors import InvalidTransition, ValidationFailed
from domain.hints import IntervalHint, OneShotHint
from domain.jobs import JobStatus
from domain.retry import RetryPolicy
from domain.schedules import CronSchedule, IntervalSchedule
from domain.specs import (
    build_endpoint,
    endpoint_fields,
    endpoint_spec,
    interval_hint,
    job_fields,
    oneshot_hint,
    parse_timestamp,
)
from domain.targets import HttpTarget, PythonTarget
from tests.builders import T0, a_fully_loaded_endpoint, a_fully_loaded_job, a_job, an_endpoint, an_http_target
from tests.strategies import endpoints, moments

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def paths(raised: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [error.path for error in raised.value.errors]


def refused(build) -> list[str]:
    with pytest.raises(ValidationFailed) as raised:
        build()
    return paths(raised)


def valid_spec(**overrides):
    spec = {
        "name": "sync-invoices",
        "target": {"kind": "http", "method": "POST", "url": "https://example.com/sync"},
        "schedule": {"interval_s": 60},
    }
    spec.update(overrides)
    return spec


# -- value objects ---------------------------------------------------------------------


@pytest.mark.parametrize("expression", ["", "bad", "* * * *", "* * * * * *", "61 * * * *", "* 25 * * *", "* * 32 * *", "* * * 13 *"])
def test_a_bad_cron_expression_is_refused_naming_cron(expression):
    assert refused(lambda: CronSchedule(cron=expression)) == ["cron"]


def test_an_unknown_time_zone_is_refused_naming_timezone():
    assert refused(lambda: CronSchedule(cron="* * * * *", timezone="Mars/Olympus_Mons")) == ["timezone"]


@pytest.mark.parametrize("interval", [timedelta(0), timedelta(seconds=-1)])
def test_an_interval_of_zero_or_less_is_refused_naming_interval(interval):
    assert refused(lambda: IntervalSchedule(interval=interval)) == ["interval"]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "example.com/x", "javascript:alert(1)", "https://"])
def test_a_target_url_that_is_not_http_or_https_with_a_host_is_refused_naming_url(url):
    assert refused(lambda: HttpTarget(url=url)) == ["url"]


def test_an_http_method_is_upper_cased_and_checked():
    assert HttpTarget(url="https://x.example", method="get").method == "GET"
    assert refused(lambda: HttpTarget(url="https://x.example", method="FETCH")) == ["method"]


def test_header_values_must_be_strings_and_a_body_must_be_json():
    assert refused(lambda: HttpTarget(url="https://x.example", headers={"X-N": 1})) == ["headers.X-N"]
    assert refused(lambda: HttpTarget(url="https://x.example", body={"at": T0})) == ["body.at"]


def test_a_python_handler_must_be_a_dotted_name():
    assert PythonTarget(handler="billing.tasks:sync").handler == "billing.tasks:sync"
    assert refused(lambda: PythonTarget(handler="not a name")) == ["handler"]


def test_hints_refuse_naive_times_and_a_non_positive_interval():
    naive = datetime(2026, 1, 1, 12, 0)
    assert refused(lambda: IntervalHint(interval=MINUTE, expires_at=naive)) == ["expires_at"]
    assert refused(lambda: IntervalHint(interval=timedelta(0), expires_at=T0)) == ["interval"]
    assert refused(lambda: OneShotHint(run_at=naive, expires_at=T0)) == ["run_at"]


def test_a_retry_policy_refuses_attempts_out_of_range_and_a_cap_below_the_backoff():
    assert refused(lambda: RetryPolicy(max_attempts=0)) == ["max_attempts"]
    assert refused(lambda: RetryPolicy(max_attempts=101)) == ["max_attempts"]
    assert refused(lambda: RetryPolicy(backoff=MINUTE, backoff_max=timedelta(seconds=30))) == ["backoff_max"]


# -- jobs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["", "-billing", "billing-", "Billing", "bill_ing", "bill ing", "x" * 64, "é"])
def test_a_job_slug_breaking_the_slug_rules_is_refused_naming_slug(slug):
    assert refused(lambda: a_job(slug=slug)) == ["slug"]


@pytest.mark.parametrize("slug", ["a", "7", "billing", "billing-2", "a" * 63])
def test_a_job_slug_following_the_rules_is_accepted(slug):
    assert a_job(slug=slug).slug == slug


def test_a_job_name_must_not_be_blank_nor_too_long():
    assert refused(lambda: a_job(name="   ")) == ["name"]
    assert refused(lambda: a_job(name="x" * 201)) == ["name"]


def test_a_job_refuses_naive_timestamps_naming_the_field():
    assert refused(lambda: a_job(created_at=datetime(2026, 1, 1))) == ["created_at"]
    assert refused(lambda: a_job(updated_at=datetime(2026, 1, 1))) == ["updated_at"]


def test_a_job_refuses_labels_that_are_not_strings():
    assert refused(lambda: a_job(labels={"team": 3})) == ["labels.team"]


def test_a_job_pauses_resumes_and_archives():
    job = a_job()
    paused = job.pause(now=T0 + MINUTE)
    assert (paused.status, paused.updated_at) == (JobStatus.PAUSED, T0 + MINUTE)
    assert paused.pause(now=T0 + HOUR) is paused  # a no-op
    resumed = paused.resume(now=T0 + HOUR)
    assert resumed.status is JobStatus.ACTIVE
    assert resumed.resume(now=T0 + HOUR) is resumed
    archived = resumed.archive(now=T0 + HOUR)
    assert archived.status is JobStatus.ARCHIVED
    assert archived.archive(now=T0 + 2 * HOUR) is archived


def test_an_archived_job_cannot_change():
    archived = a_job().archive(now=T0)
    for move in (
        lambda: archived.pause(now=T0),
        lambda: archived.resume(now=T0),
        lambda: archived.changed(now=T0, name="Renamed"),
    ):
        with pytest.raises(InvalidTransition):
            move()


def test_changing_a_job_validates_again_and_refuses_lifecycle_fields():
    job = a_job()
    assert job.changed(now=T0 + MINUTE, name="New").name == "New"
    assert refused(lambda: job.changed(now=T0, slug="Not A Slug")) == ["slug"]
    with pytest.raises(TypeError):
        job.changed(now=T0, status=JobStatus.ARCHIVED)


# -- endpoints ---------------------------------------------------------------------------------


def test_an_endpoint_name_follows_the_slug_rules():
    assert refused(lambda: an_endpoint(name="Sync Invoices")) == ["name"]


@pytest.mark.parametrize("priority", [-1, 10, 1.5, True, "3"])
def test_a_priority_outside_zero_to_nine_is_refused_naming_priority(priority):
    assert refused(lambda: an_endpoint(priority=priority)) == ["priority"]


@pytest.mark.parametrize("timeout", [timedelta(0), timedelta(seconds=-5), timedelta(hours=24, seconds=1)])
def test_a_timeout_outside_its_range_is_refused_naming_timeout(timeout):
    assert refused(lambda: an_endpoint(timeout=timeout)) == ["timeout"]


def test_a_timeout_of_exactly_24_hours_is_accepted():
    assert an_endpoint(timeout=timedelta(hours=24)).timeout == timedelta(hours=24)


def test_a_minimum_interval_above_the_maximum_is_refused_naming_min_interval():
    assert refused(lambda: an_endpoint(min_interval=HOUR, max_interval=MINUTE)) == ["min_interval"]
    assert an_endpoint(min_interval=HOUR, max_interval=HOUR).min_interval == HOUR


def test_bounds_must_be_positive():
    assert refused(lambda: an_endpoint(min_interval=timedelta(0))) == ["min_interval"]
    assert refused(lambda: an_endpoint(max_interval=timedelta(seconds=-1))) == ["max_interval"]


def test_an_endpoint_needs_a_schedule_and_a_target():
    assert refused(lambda: an_endpoint(schedule=None)) == ["schedule"]
    assert refused(lambda: an_endpoint(target="https://example.com")) == ["target"]


@pytest.mark.parametrize("field", ["created_at", "updated_at", "paused_until", "next_run_at", "last_run_at", "lease_expires_at"])
def test_an_endpoint_refuses_naive_datetimes_naming_the_field(field):
    assert refused(lambda: an_endpoint(**{field: datetime(2026, 1, 1, 12)})) == [field]


def test_a_new_endpoint_has_its_first_run_planned():
    endpoint = JobEndpoint.new(
        tenant_id="acme", name="ping", target=an_http_target(), schedule=IntervalSchedule(interval=MINUTE), now=T0
    )
    assert endpoint.status is EndpointStatus.ACTIVE
    assert (endpoint.next_run_at, endpoint.created_at, endpoint.updated_at) == (T0 + MINUTE, T0, T0)


def test_an_interval_hint_outside_the_bounds_is_refused_naming_interval():
    endpoint = an_endpoint(min_interval=MINUTE, max_interval=HOUR)
    for interval in (timedelta(seconds=59), HOUR + timedelta(seconds=1)):
        assert refused(lambda: endpoint.set_interval_hint(IntervalHint(interval=interval, expires_at=T0 + HOUR), now=T0)) == ["interval"]
    for interval in (MINUTE, HOUR):
        assert endpoint.set_interval_hint(IntervalHint(interval=interval, expires_at=T0 + HOUR), now=T0).interval_hint.interval == interval


def test_a_hint_expiring_now_or_earlier_is_refused_naming_expires_at():
    endpoint = an_endpoint()
    for expiry in (T0, T0 - MINUTE):
        assert refused(lambda: endpoint.set_interval_hint(IntervalHint(interval=MINUTE, expires_at=expiry), now=T0)) == ["expires_at"]
        assert refused(lambda: endpoint.set_oneshot_hint(OneShotHint(run_at=T0 - HOUR, expires_at=expiry), now=T0)) == ["expires_at"]


def test_a_oneshot_hint_running_after_its_expiry_is_refused_naming_run_at():
    hint = OneShotHint(run_at=T0 + 2 * HOUR, expires_at=T0 + HOUR)
    assert refused(lambda: an_endpoint().set_oneshot_hint(hint, now=T0)) == ["run_at"]


def test_hints_can_be_cleared():
    endpoint = an_endpoint().set_interval_hint(IntervalHint(interval=MINUTE, expires_at=T0 + HOUR), now=T0)
    endpoint = endpoint.set_oneshot_hint(OneShotHint(run_at=T0 + HOUR, expires_at=T0 + 2 * HOUR), now=T0)
    cleared = endpoint.clear_interval_hint(now=T0).clear_oneshot_hint(now=T0)
    assert (cleared.interval_hint, cleared.oneshot_hint) == (None, None)


def test_a_pause_until_now_or_earlier_is_refused_naming_until():
    for until in (T0, T0 - MINUTE):
        assert refused(lambda: an_endpoint().pause(now=T0, until=until)) == ["until"]
    assert refused(lambda: an_endpoint().pause(now=T0, until=datetime(2030, 1, 1))) == ["until"]


def test_an_archived_endpoint_cannot_change_and_archiving_again_is_a_no_op():
    archived = an_endpoint(claimed_by="s-1", lease_expires_at=T0 + MINUTE).archive(now=T0)
    assert (archived.status, archived.next_run_at, archived.claimed_by, archived.lease_expires_at) == (
        EndpointStatus.ARCHIVED, None, None, None,
    )
    assert archived.archive(now=T0 + HOUR) is archived
    for move in (
        lambda: archived.pause(now=T0),
        lambda: archived.resume(now=T0),
        lambda: archived.changed(now=T0, priority=3),
        lambda: archived.set_interval_hint(IntervalHint(interval=MINUTE, expires_at=T0 + HOUR), now=T0),
        lambda: archived.set_oneshot_hint(OneShotHint(run_at=T0, expires_at=T0 + HOUR), now=T0),
        lambda: archived.clear_interval_hint(now=T0),
        lambda: archived.reset_failures(now=T0),
    ):
        with pytest.raises(InvalidTransition):
            move()


def test_changing_an_endpoint_refuses_lifecycle_fields():
    with pytest.raises(TypeError):
        an_endpoint().changed(now=T0, status=EndpointStatus.PAUSED)
    with pytest.raises(TypeError):
        an_endpoint().changed(now=T0, failure_count=0)


def test_an_endpoint_is_due_only_when_active_unpaused_unleased_and_its_time_has_come():
    due = an_endpoint(next_run_at=T0)
    assert due.is_due(T0)
    assert not due.is_due(T0 - timedelta(microseconds=1))
    assert not evolve(due, status=EndpointStatus.PAUSED).is_due(T0)
    assert not evolve(due, paused_until=T0 + MINUTE).is_due(T0)
    assert not evolve(due, lease_expires_at=T0 + MINUTE).is_due(T0)
    assert evolve(due, lease_expires_at=T0).is_due(T0)
    assert not evolve(due, next_run_at=None).is_due(T0)


# -- the public vocabulary -------------------------------------------------------------------


def test_an_endpoint_definition_reports_every_bad_field_with_its_api_path():
    spec = {
        "name": "sync",
        "target": {"kind": "http", "url": "ftp://example.com"},
        "schedule": {"cron": "* * * *"},
        "retry": {"max_attempts": 0},
        "timeout_s": -1,
        "colour": "blue",
    }
    with pytest.raises(ValidationFailed) as raised:
        endpoint_fields(spec)
    assert sorted(paths(raised)) == ["colour", "retry.max_attempts", "schedule.cron", "target.url", "timeout_s"]


def test_an_endpoint_definition_reports_every_bad_entity_field_too():
    spec = valid_spec(name="Not A Slug", priority=11, timeout_s=90_000, min_interval_s=600, max_interval_s=60)
    with pytest.raises(ValidationFailed) as raised:
        build_endpoint(lambda **f: JobEndpoint.new(tenant_id="acme", now=T0, **f), endpoint_fields(spec))
    assert sorted(paths(raised)) == ["min_interval_s", "name", "priority", "timeout_s"]


def test_a_missing_definition_names_each_required_field():
    with pytest.raises(ValidationFailed) as raised:
        endpoint_fields({})
    assert sorted(paths(raised)) == ["name", "schedule", "target"]


@pytest.mark.parametrize(
    ("schedule", "path"),
    [
        ({"cron": "* * * * *", "interval_s": 60}, "schedule"),
        ({}, "schedule"),
        ({"interval_s": 0}, "schedule.interval_s"),
        ({"interval_s": "60"}, "schedule.interval_s"),
        ({"cron": "* * * * *", "timezone": "Nowhere/City"}, "schedule.timezone"),
        ({"interval_s": 60, "timezone": "UTC"}, "schedule.timezone"),
    ],
)
def test_a_bad_schedule_is_refused_with_its_api_path(schedule, path):
    with pytest.raises(ValidationFailed) as raised:
        endpoint_fields(valid_spec(schedule=schedule))
    assert paths(raised) == [path]


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ({"kind": "smtp"}, "target.kind"),
        ({"kind": "http"}, "target.url"),
        ({"kind": "http", "url": "https://x.example", "verb": "GET"}, "target.verb"),
        ({"kind": "python"}, "target.handler"),
        ({"kind": "python", "handler": "a b"}, "target.handler"),
        ({"kind": "http", "url": "https://x.example", "headers": {"X": 1}}, "target.headers.X"),
    ],
)
def test_a_bad_target_is_refused_with_its_api_path(target, path):
    with pytest.raises(ValidationFailed) as raised:
        endpoint_fields(valid_spec(target=target))
    assert paths(raised) == [path]


def test_unknown_fields_are_refused_at_every_level():
    with pytest.raises(ValidationFailed) as raised:
        endpoint_fields(valid_spec(retry={"max_attempts": 2, "backof_s": 1}, nickname="x"))
    assert sorted(paths(raised)) == ["nickname", "retry.backof_s"]
    with pytest.raises(ValidationFailed) as raised:
        job_fields({"slug": "a", "name": "A", "owner": "me"})
    assert paths(raised) == ["owner"]


def test_a_job_definition_reports_every_bad_field():
    with pytest.raises(ValidationFailed) as raised:
        job_fields({"slug": "Not A Slug", "name": "  ", "labels": {"team": 1}})
    assert sorted(paths(raised)) == ["labels.team", "name", "slug"]


def test_a_job_definition_names_every_missing_field():
    with pytest.raises(ValidationFailed) as raised:
        job_fields({})
    assert sorted(paths(raised)) == ["name", "slug"]


def test_a_partial_definition_parses_only_what_is_given():
    assert endpoint_fields({"priority": 3}, partial=True) == {"priority": 3}
    assert job_fields({"description": None}, partial=True) == {"description": ""}


def test_bounds_and_timeout_are_seconds_in_the_vocabulary():
    fields = endpoint_fields(valid_spec(min_interval_s=10, max_interval_s=3600.5, timeout_s=45, retry={"backoff_s": 2, "backoff_max_s": 30}))
    assert fields["min_interval"] == timedelta(seconds=10)
    assert fields["max_interval"] == timedelta(seconds=3600.5)
    assert fields["timeout"] == timedelta(seconds=45)
    assert (fields["retry"].backoff, fields["retry"].backoff_max) == (timedelta(seconds=2), timedelta(seconds=30))


def test_endpoint_spec_round_trips_through_endpoint_fields():
    endpoint = a_fully_loaded_endpoint(job=a_fully_loaded_job())
    fields = endpoint_fields(endpoint_spec(endpoint))
    rebuilt = evolve(endpoint, **fields)
    assert rebuilt == endpoint


@given(st.data(), moments())
def test_any_endpoint_definition_round_trips_through_the_vocabulary(data, now):
    endpoint = data.draw(endpoints(now))
    fields = endpoint_fields(endpoint_spec(endpoint))
    assert evolve(endpoint, **fields) == endpoint


def test_a_hint_in_the_vocabulary_takes_a_ttl_or_an_expiry_but_not_both():
    assert interval_hint({"interval_s": 60, "ttl_s": 600}, now=T0) == IntervalHint(interval=MINUTE, expires_at=T0 + timedelta(minutes=10))
    assert oneshot_hint({"run_at": "2026-01-05T13:00:00Z", "expires_at": "2026-01-05T14:00:00+00:00"}, now=T0).run_at == T0 + HOUR
    with pytest.raises(ValidationFailed) as raised:
        interval_hint({"interval_s": 60, "ttl_s": 60, "expires_at": "2026-01-05T14:00:00Z"}, now=T0)
    assert paths(raised) == ["ttl_s"]
    with pytest.raises(ValidationFailed) as raised:
        interval_hint({"interval_s": -1}, now=T0)
    assert sorted(paths(raised)) == ["interval_s", "ttl_s"]


def test_timestamps_in_the_vocabulary_must_carry_an_offset():
    assert parse_timestamp("2026-01-05T12:00:00Z", "at") == T0
    assert parse_timestamp("2026-01-05T13:00:00+01:00", "at") == T0
    for bad in ("2026-01-05T12:00:00", "yesterday", 1767614400):
        with pytest.raises(ValidationFailed) as raised:
            parse_timestamp(bad, "until")
        assert paths(raised) == ["until"]


def test_ids_are_time_ordered_uuid7_strings():
    import uuid

    from domain.ids import new_id

    first, second = new_id(), new_id()
    assert uuid.UUID(first).version == 7
    assert first[:8] <= second[:8]
    assert len({new_id() for _ in range(1000)}) == 1000


def test_utc_now_from_the_system_clock_is_aware():
    from domain.clock import FixedClock, SystemClock

    assert SystemClock().now().utcoffset() == timedelta(0)
    clock = FixedClock(T0)
    assert clock.advance(MINUTE) == T0 + MINUTE
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 1, 1))
    assert clock.now() == T0 + MINUTE
    assert T0.tzinfo is timezone.utc
