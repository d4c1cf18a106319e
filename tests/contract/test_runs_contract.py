"""The RunRepository contract, run against every storage adapter (``store`` fixture)."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from attrs import evolve

from domain.errors import AlreadyExists, NotFound
from domain.ids import RunId, new_id
from domain.pagination import PageRequest
from domain.queries import RunQuery
from domain.runs import RunResult, RunSource, RunStatus, RunView
from tests.builders import OTHER_TENANT, T0, TENANT, a_finished_run, a_job, a_run, an_endpoint
from tests.contract.support import assert_utc_aware, every_page, given_stored, ids, newest_first

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)


async def read_run(store, run_id, tenant_id=TENANT):
    async with store.unit_of_work() as uow:
        return await uow.runs.get(run_id, tenant_id=tenant_id)


async def list_runs(store, tenant_id=TENANT, **query):
    async with store.unit_of_work() as uow:
        return await uow.runs.list(tenant_id, RunQuery(**query))


@pytest.fixture
async def endpoint(store):
    job = a_job()
    endpoint = an_endpoint(job=job)
    await given_stored(store, job, endpoint)
    return endpoint


# -- round trips ---------------------------------------------------------------------------


async def test_a_finished_run_reads_back_with_every_field_exactly(store, endpoint):
    run = a_finished_run(endpoint=endpoint)
    await given_stored(store, run)

    found = await read_run(store, run.id)

    assert found == run
    assert found.result.output == {"rows": 12, "ok": False, "items": [{"id": 1}, None, 2.5, "x"], "empty": {}}
    assert found.duration_ms == run.duration_ms
    assert_utc_aware(found)


async def test_a_pending_run_with_defaults_reads_back_exactly(store, endpoint):
    run = a_run(endpoint=endpoint)
    await given_stored(store, run)
    found = await read_run(store, run.id)
    assert found == run
    assert (found.started_at, found.result, found.error, found.dead_lettered) == (None, None, None, False)


@pytest.mark.parametrize(
    "output",
    [
        None, 0, "text", [1, "two", None], {"nested": {"deep": [True, False, 1.5]}}, {"unicode": "Grüße ✓"},
        {"big": 2**70, "negative": -(2**65), "tiny": -1.25e-300, "tenth": 0.1},
    ],
)
async def test_a_results_output_json_reads_back_as_given(store, endpoint, output):
    run = a_run(endpoint=endpoint).start(at=T0, worker="w").succeed(at=T0 + SECOND, result=RunResult(output=output))
    await given_stored(store, run)
    assert (await read_run(store, run.id)).result == RunResult(output=output)


async def test_a_run_moved_through_its_states_reads_back_after_each_update(store, endpoint):
    run = a_run(endpoint=endpoint)
    await given_stored(store, run)
    steps = [
        run.dispatched(at=T0 + SECOND),
    ]
    steps.append(steps[-1].start(at=T0 + 2 * SECOND, worker="worker-1"))
    steps.append(steps[-1].beat(at=T0 + 3 * SECOND))
    steps.append(
        steps[-1].fail(at=T0 + 4 * SECOND, error="HTTP 503", result=RunResult(status_code=503, body_excerpt="busy"))
    )
    steps.append(steps[-1].dead_letter())

    for step in steps:
        async with store.unit_of_work() as uow:
            await uow.runs.update(step)
            await uow.commit()
        assert await read_run(store, run.id) == step


# -- lookups, tenants and uniqueness ---------------------------------------------------------------


async def test_starting_runs_records_the_worker_and_the_later_of_the_start_and_the_slot(store, endpoint):
    # a run taken ahead of its slot is started as of its slot; a due one as of the start
    ahead = a_run(endpoint=endpoint, scheduled_at=T0 + MINUTE, exclusive=False)
    due = a_run(endpoint=endpoint, scheduled_at=T0 - MINUTE, exclusive=False)
    await given_stored(store, ahead, due)

    async with store.unit_of_work() as uow:
        started = await uow.runs.start([ahead.id, due.id], at=T0, worker="w-1")
        await uow.commit()

    assert {(r.id, r.started_at, r.heartbeat_at, r.worker_id) for r in started} == {
        (ahead.id, T0 + MINUTE, T0, "w-1"), (due.id, T0, T0, "w-1"),
    }
    for run in started:
        assert await read_run(store, run.id) == run


async def test_getting_a_missing_run_raises_not_found(store, endpoint):
    await given_stored(store, a_run(endpoint=endpoint))
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.runs.get(RunId(new_id()), tenant_id=TENANT)
        with pytest.raises(NotFound):
            await uow.runs.get(RunId(new_id()), tenant_id=None)


async def test_another_tenants_run_is_not_found_but_the_system_view_sees_it(store):
    theirs = an_endpoint(tenant_id=OTHER_TENANT)
    run = a_run(endpoint=theirs)
    await given_stored(store, theirs, run)
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.runs.get(run.id, tenant_id=TENANT)
        assert await uow.runs.get(run.id, tenant_id=None) == run


async def test_a_second_run_for_the_same_endpoint_and_slot_raises_already_exists(store, endpoint):
    first = a_run(endpoint=endpoint, slot="2026-01-05T12:00:00.000000Z")
    await given_stored(store, first)
    async with store.unit_of_work() as uow:
        with pytest.raises(AlreadyExists):
            await uow.runs.add(a_run(endpoint=endpoint, slot=first.slot, source=RunSource.MANUAL))
    assert ids((await list_runs(store)).items) == [first.id]


async def test_the_same_slot_on_another_endpoint_is_allowed(store, endpoint):
    other = an_endpoint()
    await given_stored(store, other)
    mine, theirs = a_run(endpoint=endpoint, slot="s-1"), a_run(endpoint=other, slot="s-1")
    await given_stored(store, mine, theirs)
    assert set(ids((await list_runs(store)).items)) == {mine.id, theirs.id}


async def test_updating_a_missing_run_raises_not_found(store, endpoint):
    async with store.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await uow.runs.update(a_run(endpoint=endpoint))


# -- lists ---------------------------------------------------------------------------------------


@pytest.fixture
async def history(store):
    """Two jobs, three endpoints and runs of every kind, one minute apart from T0."""
    billing, reports = a_job(), a_job()
    sync, refund = an_endpoint(job=billing), an_endpoint(job=billing)
    digest = an_endpoint(job=reports)
    theirs = an_endpoint(tenant_id=OTHER_TENANT)
    at = lambda n: T0 + n * MINUTE  # noqa: E731
    running = lambda run: run.start(at=run.scheduled_at, worker="w")  # noqa: E731
    runs = {
        "sync ok": running(a_run(endpoint=sync, scheduled_at=at(0))).succeed(at=at(0) + SECOND),
        "sync failed": running(a_run(endpoint=sync, scheduled_at=at(1))).fail(at=at(1) + SECOND, error="x"),
        "sync dead": running(a_run(endpoint=sync, scheduled_at=at(2), source=RunSource.RETRY, attempt=2))
        .fail(at=at(2) + SECOND, error="x")
        .dead_letter(),
        "refund pending": a_run(endpoint=refund, scheduled_at=at(3), source=RunSource.MANUAL, slot="manual:1"),
        "digest running": running(a_run(endpoint=digest, scheduled_at=at(4), source=RunSource.BASELINE_CRON)),
        "digest hint": a_run(endpoint=digest, scheduled_at=at(5), source=RunSource.HINT_ONESHOT),
        "theirs": a_run(endpoint=theirs, scheduled_at=at(2)),
    }
    await given_stored(store, billing, reports, sync, refund, digest, theirs, *runs.values())
    return {"jobs": (billing, reports), "endpoints": (sync, refund, digest), "runs": runs}


async def labels(store, history, tenant_id=TENANT, **query):
    names = {run.id: label for label, run in history["runs"].items()}
    return [names[run.id] for run in (await list_runs(store, tenant_id, **query)).items]


async def test_the_list_holds_the_tenants_runs_newest_first(store, history):
    assert await labels(store, history) == [
        "digest hint", "digest running", "refund pending", "sync dead", "sync failed", "sync ok",
    ]
    assert await labels(store, history, OTHER_TENANT) == ["theirs"]


async def test_the_system_view_lists_every_tenants_runs(store, history):
    assert len(await labels(store, history, None)) == 7
    assert "theirs" in await labels(store, history, None)


async def test_the_list_filters_by_job_and_by_endpoint(store, history):
    billing, reports = history["jobs"]
    sync, refund, digest = history["endpoints"]
    assert await labels(store, history, job_id=billing.id) == ["refund pending", "sync dead", "sync failed", "sync ok"]
    assert await labels(store, history, job_id=reports.id) == ["digest hint", "digest running"]
    assert await labels(store, history, endpoint_id=sync.id) == ["sync dead", "sync failed", "sync ok"]
    assert await labels(store, history, endpoint_id=refund.id, job_id=billing.id) == ["refund pending"]
    assert await labels(store, history, endpoint_id=digest.id, job_id=billing.id) == []


async def test_the_list_filters_by_status(store, history):
    assert await labels(store, history, status=RunStatus.FAILED) == ["sync dead", "sync failed"]
    assert await labels(store, history, status=RunStatus.PENDING) == ["digest hint", "refund pending"]
    assert await labels(store, history, status=RunStatus.CANCELED) == []


async def test_the_list_filters_by_source(store, history):
    assert await labels(store, history, source=RunSource.RETRY) == ["sync dead"]
    assert await labels(store, history, source=RunSource.BASELINE_INTERVAL) == ["sync failed", "sync ok"]
    assert await labels(store, history, source=RunSource.HINT_ONESHOT) == ["digest hint"]


async def test_since_is_inclusive_and_until_exclusive(store, history):
    assert await labels(store, history, since=T0 + MINUTE, until=T0 + 3 * MINUTE) == ["sync dead", "sync failed"]
    assert await labels(store, history, since=T0 + 5 * MINUTE) == ["digest hint"]
    assert await labels(store, history, until=T0 + MINUTE) == ["sync ok"]
    assert await labels(store, history, since=T0 + MINUTE + SECOND, until=T0 + 2 * MINUTE) == []


async def test_the_list_filters_by_dead_letter(store, history):
    assert await labels(store, history, dead_lettered=True) == ["sync dead"]
    assert len(await labels(store, history, dead_lettered=False)) == 5


async def list_views(store, tenant_id=TENANT, read_only=True, **query):
    async with store.unit_of_work(read_only=read_only) as uow:
        return await uow.runs.list_views(tenant_id, RunQuery(**query))


async def test_the_lists_views_are_its_runs_as_read_models_page_by_page(store, history):
    by_runs = await every_page(lambda page: list_runs(store, page=page), limit=4)
    by_views = await every_page(lambda page: list_views(store, page=page), limit=4)

    assert [page.next_cursor for page in by_views] == [page.next_cursor for page in by_runs]
    assert [list(page.items) for page in by_views] == [[RunView.of(run) for run in page.items] for page in by_runs]


async def test_a_finished_runs_view_shows_every_field_it_holds_in_utc(store, endpoint):
    run = a_finished_run(endpoint=endpoint)
    await given_stored(store, run)

    [view] = (await list_views(store, endpoint_id=endpoint.id, status=RunStatus.FAILED, dead_lettered=True)).items

    assert view == RunView.of(run)
    assert view.result == run.result and view.duration_ms == run.duration_ms and view.params == run.params
    for moment in (view.scheduled_at, view.created_at, view.started_at, view.finished_at):
        assert moment.tzinfo is timezone.utc


async def test_the_views_read_the_same_in_a_unit_of_work_that_may_write(store, history):
    read_only = await every_page(lambda page: list_views(store, page=page), limit=4)
    writable = await every_page(lambda page: list_views(store, page=page, read_only=False), limit=4)
    assert writable == read_only


async def test_the_views_are_the_tenants_only(store, history):
    assert [view.id for view in (await list_views(store, OTHER_TENANT)).items] == [history["runs"]["theirs"].id]


async def test_filters_combine(store, history):
    billing, _ = history["jobs"]
    found = await labels(store, history, job_id=billing.id, status=RunStatus.FAILED, dead_lettered=False, since=T0)
    assert found == ["sync failed"]


@pytest.mark.parametrize(("count", "limit"), [(9, 4), (8, 4), (3, 1)])
async def test_pages_run_newest_first_without_repeating_or_losing_a_run_even_on_tied_times(store, endpoint, count, limit):
    # Given runs scheduled in groups of three at the same instant
    runs = [a_run(endpoint=endpoint, scheduled_at=T0 + (n // 3) * SECOND, slot=f"manual:{n}") for n in range(count)]
    await given_stored(store, *runs)

    async def fetch(page: PageRequest):
        return await list_runs(store, page=page)

    pages = await every_page(fetch, limit=limit)

    assert pages[-1].next_cursor is None
    assert all(len(p.items) == limit for p in pages[:-1])
    assert [r.id for p in pages for r in p.items] == ids(newest_first(runs, lambda r: r.scheduled_at))


async def test_filtered_pages_keep_the_filter_across_pages(store, endpoint):
    runs = [a_run(endpoint=endpoint, scheduled_at=T0, slot=f"manual:{n}", source=RunSource.MANUAL) for n in range(5)]
    noise = [a_run(endpoint=endpoint, scheduled_at=T0, slot=f"noise:{n}") for n in range(5)]
    await given_stored(store, *runs, *noise)

    async def fetch(page: PageRequest):
        return await list_runs(store, source=RunSource.MANUAL, page=page)

    pages = await every_page(fetch, limit=2)
    assert [r.id for p in pages for r in p.items] == ids(newest_first(runs, lambda r: r.scheduled_at))


async def test_an_updated_run_keeps_its_place_in_the_list(store, endpoint):
    early, late = a_run(endpoint=endpoint, scheduled_at=T0), a_run(endpoint=endpoint, scheduled_at=T0 + MINUTE)
    await given_stored(store, early, late)
    async with store.unit_of_work() as uow:
        await uow.runs.update(evolve(early.start(at=T0 + 2 * MINUTE, worker="w")))
        await uow.commit()
    assert ids((await list_runs(store)).items) == [late.id, early.id]
