"""Use cases over the in-memory adapter and a fixed clock (``services``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adapters.memory import MemoryStore
from domain.clock import FixedClock
from domain.endpoints import EndpointStatus
from domain.errors import AlreadyExists, InvalidTransition, NotFound, StorageUnavailable, ValidationFailed
from domain.jobs import JobStatus
from domain.queries import EndpointQuery, JobQuery
from domain.runs import RunSource
from domain.schedules import CronSchedule
from services import EndpointsService, JobsService, RunsService
from tests.builders import OTHER_TENANT, TENANT, a_run

UTC = timezone.utc
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def jobs(store, clock) -> JobsService:
    return JobsService(uow=store.unit_of_work, clock=clock)


@pytest.fixture
def endpoints(store, clock) -> EndpointsService:
    return EndpointsService(uow=store.unit_of_work, clock=clock)


def endpoint_spec(**overrides):
    spec = {
        "name": "sync-invoices",
        "target": {"kind": "http", "method": "POST", "url": "https://billing.example.com/sync", "headers": {"X-A": "1"}},
        "schedule": {"interval_s": 60},
    }
    spec.update(overrides)
    return spec


def paths(raised) -> list[str]:
    return sorted(error.path for error in raised.value.errors)


# -- jobs -----------------------------------------------------------------------------------


async def test_a_created_job_can_be_read_back_by_id_and_by_slug(jobs):
    job = await jobs.create(TENANT, {"slug": "billing", "name": "Billing", "labels": {"team": "pay"}})
    assert (job.slug, job.name, job.labels, job.status, job.created_at) == ("billing", "Billing", {"team": "pay"}, JobStatus.ACTIVE, NOW)
    assert await jobs.get(TENANT, job.id) == job
    assert await jobs.get_by_slug(TENANT, "billing") == job


async def test_a_bad_job_definition_names_its_fields_and_stores_nothing(jobs):
    with pytest.raises(ValidationFailed) as raised:
        await jobs.create(TENANT, {"slug": "Not A Slug", "name": "", "extra": 1})
    assert paths(raised) == ["extra", "name", "slug"]
    assert (await jobs.list(TENANT)).items == []


async def test_a_slug_is_unique_per_tenant(jobs):
    await jobs.create(TENANT, {"slug": "billing", "name": "Billing"})
    with pytest.raises(AlreadyExists):
        await jobs.create(TENANT, {"slug": "billing", "name": "Billing again"})
    other = await jobs.create(OTHER_TENANT, {"slug": "billing", "name": "Theirs"})
    assert [j.name for j in (await jobs.list(TENANT)).items] == ["Billing"]
    assert (await jobs.list(OTHER_TENANT)).items == [other]


async def test_another_tenants_job_is_not_found(jobs):
    job = await jobs.create(TENANT, {"slug": "billing", "name": "Billing"})
    with pytest.raises(NotFound):
        await jobs.get(OTHER_TENANT, job.id)
    with pytest.raises(NotFound):
        await jobs.pause(OTHER_TENANT, job.id)
    assert (await jobs.get(TENANT, job.id)).status is JobStatus.ACTIVE


async def test_jobs_are_listed_newest_first_and_filtered(jobs, clock):
    first = await jobs.create(TENANT, {"slug": "a", "name": "Alpha", "labels": {"team": "pay"}})
    clock.advance(MINUTE)
    second = await jobs.create(TENANT, {"slug": "b", "name": "Beta", "labels": {"team": "ops"}})
    assert [j.id for j in (await jobs.list(TENANT)).items] == [second.id, first.id]
    assert [j.id for j in (await jobs.list(TENANT, JobQuery(label=("team", "pay")))).items] == [first.id]
    assert [j.id for j in (await jobs.list(TENANT, JobQuery(search="BET"))).items] == [second.id]


async def test_updating_a_job_changes_only_the_given_fields(jobs, clock):
    job = await jobs.create(TENANT, {"slug": "billing", "name": "Billing", "description": "old"})
    clock.advance(MINUTE)
    changed = await jobs.update(TENANT, job.id, {"description": "new"})
    assert (changed.name, changed.description, changed.updated_at, changed.created_at) == ("Billing", "new", NOW + MINUTE, NOW)
    assert await jobs.get(TENANT, job.id) == changed


async def test_a_bad_job_update_is_refused_and_changes_nothing(jobs):
    job = await jobs.create(TENANT, {"slug": "billing", "name": "Billing"})
    with pytest.raises(ValidationFailed) as raised:
        await jobs.update(TENANT, job.id, {"slug": "Bad Slug", "name": "Renamed"})
    assert paths(raised) == ["slug"]
    assert await jobs.get(TENANT, job.id) == job


async def test_renaming_a_job_to_a_taken_slug_is_refused(jobs):
    await jobs.create(TENANT, {"slug": "a", "name": "A"})
    b = await jobs.create(TENANT, {"slug": "b", "name": "B"})
    with pytest.raises(AlreadyExists):
        await jobs.update(TENANT, b.id, {"slug": "a"})
    assert (await jobs.get(TENANT, b.id)).slug == "b"


async def test_a_job_pauses_resumes_and_archives(jobs):
    job = await jobs.create(TENANT, {"slug": "billing", "name": "Billing"})
    assert (await jobs.pause(TENANT, job.id)).status is JobStatus.PAUSED
    assert (await jobs.get(TENANT, job.id)).status is JobStatus.PAUSED
    assert (await jobs.resume(TENANT, job.id)).status is JobStatus.ACTIVE
    assert (await jobs.archive(TENANT, job.id)).status is JobStatus.ARCHIVED
    assert (await jobs.list(TENANT)).items == []
    assert [j.id for j in (await jobs.list(TENANT, JobQuery(status=JobStatus.ARCHIVED))).items] == [job.id]
    with pytest.raises(InvalidTransition):
        await jobs.update(TENANT, job.id, {"name": "Too late"})
    with pytest.raises(InvalidTransition):
        await jobs.resume(TENANT, job.id)


async def test_archiving_a_job_archives_its_endpoints_and_no_others(jobs, endpoints):
    job = await jobs.create(TENANT, {"slug": "billing", "name": "Billing"})
    active = await endpoints.create(TENANT, endpoint_spec(name="one"), job_id=job.id)
    paused = await endpoints.create(TENANT, endpoint_spec(name="two"), job_id=job.id)
    await endpoints.pause(TENANT, paused.id)
    loose = await endpoints.create(TENANT, endpoint_spec(name="loose"))

    await jobs.archive(TENANT, job.id)

    for endpoint_id in (active.id, paused.id):
        archived = await endpoints.get(TENANT, endpoint_id)
        assert (archived.status, archived.next_run_at) == (EndpointStatus.ARCHIVED, None)
    assert (await endpoints.get(TENANT, loose.id)).status is EndpointStatus.ACTIVE
    assert (await jobs.endpoints(TENANT, job.id)).items == []


async def test_a_failure_inside_a_unit_of_work_rolls_back_everything_it_did(store, clock, endpoints):
    # Given a job with two endpoints, and storage that fails on the second endpoint update
    jobs = JobsService(uow=store.unit_of_work, clock=clock)
    job = await jobs.create(TENANT, {"slug": "billing", "name": "Billing"})
    for name in ("one", "two"):
        await endpoints.create(TENANT, endpoint_spec(name=name), job_id=job.id)

    def failing_uow():
        uow = store.unit_of_work()
        update, calls = uow.endpoints.update, []

        async def flaky(endpoint):
            calls.append(endpoint.id)
            if len(calls) == 2:
                raise StorageUnavailable("disk full")
            await update(endpoint)

        uow.endpoints.update = flaky
        return uow

    # When archiving the job fails half-way
    with pytest.raises(StorageUnavailable):
        await JobsService(uow=failing_uow, clock=clock).archive(TENANT, job.id)

    # Then neither the job nor the first endpoint was archived
    assert (await jobs.get(TENANT, job.id)).status is JobStatus.ACTIVE
    assert {e.status for e in (await jobs.endpoints(TENANT, job.id)).items} == {EndpointStatus.ACTIVE}


# -- endpoints ----------------------------------------------------------------------------------


async def test_a_created_endpoint_has_its_first_run_planned_and_reads_back(endpoints):
    endpoint = await endpoints.create(TENANT, endpoint_spec())
    assert (endpoint.next_run_at, endpoint.next_run_source) == (NOW + MINUTE, RunSource.BASELINE_INTERVAL)
    assert endpoint.target.headers == {"X-A": "1"}
    assert await endpoints.get(TENANT, endpoint.id) == endpoint
    assert (await endpoints.list(TENANT)).items == [endpoint]


async def test_a_bad_endpoint_definition_names_the_fields_and_stores_nothing(endpoints):
    spec = endpoint_spec(target={"kind": "http", "url": "ftp://x"}, schedule={"cron": "* * *"}, priority=12, timeout_s=0)
    with pytest.raises(ValidationFailed) as raised:
        await endpoints.create(TENANT, spec)
    assert paths(raised) == ["priority", "schedule.cron", "target.url", "timeout_s"]
    assert (await endpoints.list(TENANT)).items == []


async def test_an_endpoint_definition_with_bad_entity_fields_names_them_all_and_stores_nothing(endpoints):
    spec = endpoint_spec(name="Bad Name", priority=12, min_interval_s=600, max_interval_s=60)
    with pytest.raises(ValidationFailed) as raised:
        await endpoints.create(TENANT, spec)
    assert paths(raised) == ["min_interval_s", "name", "priority"]
    assert (await endpoints.list(TENANT)).items == []


async def test_an_endpoint_in_an_unknown_job_is_not_found_and_nothing_is_stored(endpoints, jobs):
    with pytest.raises(NotFound):
        await endpoints.create(TENANT, endpoint_spec(), job_id="0190a6d2-0000-7000-8000-000000000000")
    theirs = await jobs.create(OTHER_TENANT, {"slug": "billing", "name": "Theirs"})
    with pytest.raises(NotFound):
        await endpoints.create(TENANT, endpoint_spec(), job_id=theirs.id)
    assert (await endpoints.list(TENANT)).items == []
    assert (await endpoints.list(OTHER_TENANT)).items == []


async def test_an_endpoint_name_is_unique_per_tenant(endpoints):
    first = await endpoints.create(TENANT, endpoint_spec())
    with pytest.raises(AlreadyExists):
        await endpoints.create(TENANT, endpoint_spec(schedule={"interval_s": 5}))
    assert (await endpoints.list(TENANT)).items == [first]
    assert (await endpoints.create(OTHER_TENANT, endpoint_spec())).tenant_id == OTHER_TENANT


async def test_changing_the_schedule_replans_the_next_run_at_once(endpoints, clock):
    endpoint = await endpoints.create(TENANT, endpoint_spec())
    clock.advance(10 * MINUTE)
    changed = await endpoints.update(TENANT, endpoint.id, {"schedule": {"cron": "0 * * * *", "timezone": "Europe/Berlin"}})
    assert changed.schedule == CronSchedule(cron="0 * * * *", timezone="Europe/Berlin")
    assert (changed.next_run_at, changed.next_run_source) == (NOW + 60 * MINUTE, RunSource.BASELINE_CRON)
    assert changed.updated_at == NOW + 10 * MINUTE
    assert await endpoints.get(TENANT, endpoint.id) == changed


async def test_an_endpoint_update_keeps_the_fields_not_given(endpoints):
    endpoint = await endpoints.create(TENANT, endpoint_spec(priority=4, retry={"max_attempts": 3}))
    changed = await endpoints.update(TENANT, endpoint.id, {"description": "Sync the ledger"})
    assert (changed.description, changed.priority, changed.retry.max_attempts) == ("Sync the ledger", 4, 3)
    assert changed.target == endpoint.target


async def test_a_bad_endpoint_update_names_the_fields_and_changes_nothing(endpoints):
    endpoint = await endpoints.create(TENANT, endpoint_spec())
    with pytest.raises(ValidationFailed) as raised:
        await endpoints.update(TENANT, endpoint.id, {"schedule": {"interval_s": -5}, "priority": 99})
    assert paths(raised) == ["priority", "schedule.interval_s"]
    assert await endpoints.get(TENANT, endpoint.id) == endpoint


async def test_moving_an_endpoint_to_an_unknown_job_is_not_found_and_changes_nothing(endpoints):
    endpoint = await endpoints.create(TENANT, endpoint_spec())
    with pytest.raises(NotFound):
        await endpoints.update(TENANT, endpoint.id, {"job_id": "0190a6d2-0000-7000-8000-000000000000"})
    assert (await endpoints.get(TENANT, endpoint.id)).job_id is None


async def test_an_endpoint_pauses_until_a_time_resumes_and_archives(endpoints, clock):
    endpoint = await endpoints.create(TENANT, endpoint_spec())
    paused = await endpoints.pause(TENANT, endpoint.id, until="2026-01-05T14:00:00Z")
    assert paused.next_run_at == NOW + 120 * MINUTE + MINUTE
    with pytest.raises(ValidationFailed) as raised:
        await endpoints.pause(TENANT, endpoint.id, until="2026-01-05T11:00:00Z")
    assert paths(raised) == ["until"]
    stopped = await endpoints.pause(TENANT, endpoint.id)
    assert (stopped.status, stopped.next_run_at) == (EndpointStatus.PAUSED, None)
    clock.advance(5 * MINUTE)
    resumed = await endpoints.resume(TENANT, endpoint.id)
    assert (resumed.status, resumed.next_run_at) == (EndpointStatus.ACTIVE, NOW + 6 * MINUTE)
    archived = await endpoints.archive(TENANT, endpoint.id)
    assert archived.status is EndpointStatus.ARCHIVED
    assert (await endpoints.list(TENANT)).items == []
    assert (await endpoints.list(TENANT, EndpointQuery(status=EndpointStatus.ARCHIVED))).items == [archived]
    with pytest.raises(InvalidTransition):
        await endpoints.resume(TENANT, endpoint.id)


async def test_hints_are_set_and_cleared(endpoints):
    endpoint = await endpoints.create(TENANT, endpoint_spec(schedule={"interval_s": 3600}))
    hinted = await endpoints.set_interval_hint(TENANT, endpoint.id, {"interval_s": 30, "ttl_s": 600, "reason": "backlog"})
    assert (hinted.interval_hint.interval, hinted.interval_hint.expires_at) == (timedelta(seconds=30), NOW + 10 * MINUTE)
    assert (hinted.next_run_at, hinted.next_run_source) == (NOW + timedelta(seconds=30), RunSource.HINT_INTERVAL)
    shot = await endpoints.set_oneshot_hint(TENANT, endpoint.id, {"run_at": "2026-01-05T12:00:10Z", "ttl_s": 300})
    assert (shot.next_run_at, shot.next_run_source) == (NOW + timedelta(seconds=10), RunSource.HINT_ONESHOT)
    assert (await endpoints.get(TENANT, endpoint.id)).oneshot_hint is not None

    cleared = await endpoints.clear_oneshot_hint(TENANT, endpoint.id)
    cleared = await endpoints.clear_interval_hint(TENANT, endpoint.id)
    assert (cleared.interval_hint, cleared.oneshot_hint) == (None, None)
    assert (cleared.next_run_at, cleared.next_run_source) == (NOW + 60 * MINUTE, RunSource.BASELINE_INTERVAL)
    assert await endpoints.get(TENANT, endpoint.id) == cleared


async def test_an_interval_hint_outside_the_bounds_is_refused_in_the_public_vocabulary(endpoints):
    endpoint = await endpoints.create(TENANT, endpoint_spec(min_interval_s=60, max_interval_s=600))
    with pytest.raises(ValidationFailed) as raised:
        await endpoints.set_interval_hint(TENANT, endpoint.id, {"interval_s": 5, "ttl_s": 600})
    assert paths(raised) == ["interval_s"]
    assert (await endpoints.get(TENANT, endpoint.id)).interval_hint is None


async def test_resetting_failures_restores_the_cadence(endpoints, store):
    endpoint = await endpoints.create(TENANT, endpoint_spec())
    async with store.unit_of_work() as uow:
        failing = endpoint.record_failure(now=NOW).record_failure(now=NOW)
        await uow.endpoints.update(failing)
        await uow.commit()
    assert (await endpoints.get(TENANT, endpoint.id)).next_run_at == NOW + 4 * MINUTE
    reset = await endpoints.reset_failures(TENANT, endpoint.id)
    assert (reset.failure_count, reset.next_run_at) == (0, NOW + MINUTE)


async def test_another_tenants_endpoint_is_not_found_for_every_use_case(endpoints):
    endpoint = await endpoints.create(TENANT, endpoint_spec())
    for call in (
        lambda: endpoints.get(OTHER_TENANT, endpoint.id),
        lambda: endpoints.update(OTHER_TENANT, endpoint.id, {"priority": 1}),
        lambda: endpoints.pause(OTHER_TENANT, endpoint.id),
        lambda: endpoints.archive(OTHER_TENANT, endpoint.id),
        lambda: endpoints.set_interval_hint(OTHER_TENANT, endpoint.id, {"interval_s": 5, "ttl_s": 5}),
    ):
        with pytest.raises(NotFound):
            await call()
    assert await endpoints.get(TENANT, endpoint.id) == endpoint


# -- runs ------------------------------------------------------------------------------------------


async def test_runs_are_read_per_tenant(store, clock, endpoints):
    endpoint = await endpoints.create(TENANT, endpoint_spec())
    run = a_run(endpoint=endpoint)
    async with store.unit_of_work() as uow:
        await uow.runs.add(run)
        await uow.commit()
    runs = RunsService(uow=store.unit_of_work, clock=clock)
    assert await runs.get(TENANT, run.id) == run
    assert (await runs.list(TENANT)).items == [run]
    with pytest.raises(NotFound):
        await runs.get(OTHER_TENANT, run.id)
    assert (await runs.list(OTHER_TENANT)).items == []


async def test_reading_runs_opens_read_only_units_of_work(store, clock):
    opened: list[bool] = []

    def unit_of_work(*, read_only: bool = False):
        opened.append(read_only)
        return store.unit_of_work(read_only=read_only)

    runs = RunsService(uow=unit_of_work, clock=clock)
    await runs.list(TENANT)
    with pytest.raises(NotFound):
        await runs.get(TENANT, a_run().id)
    assert opened == [True, True]
