"""The run state machine (``domain.runs``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidTransition
from domain.runs import BODY_EXCERPT_LIMIT, ERROR_LIMIT, Run, RunResult, RunSource, RunStatus, can_move, slot_key
from tests.builders import T0, a_run

S = RunStatus
LEGAL = {
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.CANCELED),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.TIMED_OUT),
    (S.RUNNING, S.EXPIRED),
    (S.RUNNING, S.CANCELED),
}
FINAL = {S.SUCCEEDED, S.FAILED, S.CANCELED, S.TIMED_OUT, S.EXPIRED}
SECOND = timedelta(seconds=1)

# Each move, by the status it aims at, applied at ``T0 + n seconds``.
MOVES = {
    S.RUNNING: lambda run, at: run.start(at=at, worker="w-1"),
    S.SUCCEEDED: lambda run, at: run.succeed(at=at, result=RunResult(status_code=200)),
    S.FAILED: lambda run, at: run.fail(at=at, error="boom"),
    S.TIMED_OUT: lambda run, at: run.time_out(at=at),
    S.EXPIRED: lambda run, at: run.expire(at=at),
    S.CANCELED: lambda run, at: run.cancel(at=at),
}


def in_status(status: RunStatus) -> Run:
    """A run brought to ``status`` through legal moves."""
    run = a_run()
    if status is S.PENDING:
        return run
    if status is S.CANCELED:
        return run.cancel(at=T0 + SECOND)
    run = run.start(at=T0 + SECOND, worker="w-1")
    return run if status is S.RUNNING else MOVES[status](run, T0 + 2 * SECOND)


def test_the_final_statuses_are_exactly_those_without_a_way_out():
    assert {status for status in S if status.final} == FINAL
    assert all(not can_move(final, to) for final in FINAL for to in S)


@pytest.mark.parametrize(("current", "to"), sorted(LEGAL))
def test_every_legal_move_works(current, to):
    moved = MOVES[to](in_status(current), T0 + 5 * SECOND)
    assert moved.status is to
    assert can_move(current, to)


@pytest.mark.parametrize(
    ("current", "to"), sorted((a, b) for a in S for b in S if b is not S.PENDING and (a, b) not in LEGAL)
)
def test_every_illegal_move_raises_invalid_transition(current, to):
    run = in_status(current)
    with pytest.raises(InvalidTransition):
        MOVES[to](run, T0 + 5 * SECOND)
    assert not can_move(current, to)


@given(st.lists(st.sampled_from(sorted(MOVES)), max_size=12))
def test_any_sequence_of_moves_follows_only_allowed_edges_and_final_states_never_change(moves):
    run = a_run()
    for n, to in enumerate(moves, start=1):
        before = run
        try:
            run = MOVES[to](run, T0 + n * SECOND)
        except InvalidTransition:
            assert (before.status, to) not in LEGAL
            assert run is before
            continue
        assert (before.status, run.status) in LEGAL
        assert not before.status.final


def test_starting_records_the_worker_time_and_first_heartbeat():
    run = a_run().start(at=T0 + SECOND, worker="worker-9")
    assert (run.status, run.started_at, run.heartbeat_at, run.worker_id) == (S.RUNNING, T0 + SECOND, T0 + SECOND, "worker-9")


def test_a_run_taken_ahead_of_its_slot_is_started_as_of_its_slot_and_records_a_later_beginning():
    run = a_run(scheduled_at=T0 + SECOND).start(at=T0, worker="w")
    assert (run.started_at, run.heartbeat_at) == (T0 + SECOND, T0)
    assert run.began(at=T0 + SECOND / 2).started_at == T0 + SECOND  # never before its slot
    assert run.began(at=T0 + 2 * SECOND).started_at == T0 + 2 * SECOND
    with pytest.raises(InvalidTransition):
        a_run().began(at=T0)


def test_a_heartbeat_is_only_accepted_while_running():
    running = a_run().start(at=T0, worker="w")
    assert running.beat(at=T0 + 3 * SECOND).heartbeat_at == T0 + 3 * SECOND
    for status in set(S) - {S.RUNNING}:
        with pytest.raises(InvalidTransition):
            in_status(status).beat(at=T0 + 3 * SECOND)


def test_finishing_records_the_time_result_and_error():
    running = a_run().start(at=T0, worker="w")
    ok = running.succeed(at=T0 + 2 * SECOND, result=RunResult(status_code=204, output={"n": 1}))
    assert (ok.finished_at, ok.result.status_code, ok.result.output, ok.error) == (T0 + 2 * SECOND, 204, {"n": 1}, None)
    failed = running.fail(at=T0 + 3 * SECOND, error="HTTP 500", result=RunResult(status_code=500))
    assert (failed.status, failed.error, failed.result.status_code) == (S.FAILED, "HTTP 500", 500)
    assert running.time_out(at=T0 + 4 * SECOND).error == "run exceeded its timeout"
    assert running.cancel(at=T0 + 4 * SECOND, reason="operator").error == "operator"


def test_duration_is_the_time_from_start_to_finish_in_milliseconds():
    run = a_run().start(at=T0, worker="w")
    assert run.duration_ms is None
    assert run.succeed(at=T0 + timedelta(seconds=1, milliseconds=250)).duration_ms == 1250.0
    assert a_run().cancel(at=T0).duration_ms is None  # canceled before it started


@pytest.mark.parametrize("status", [S.FAILED, S.TIMED_OUT, S.EXPIRED, S.CANCELED])
def test_a_final_unsuccessful_run_can_be_dead_lettered(status):
    run = in_status(status).dead_letter()
    assert run.dead_lettered is True
    assert run.status is status


@pytest.mark.parametrize("status", [S.PENDING, S.RUNNING, S.SUCCEEDED])
def test_a_live_or_successful_run_cannot_be_dead_lettered(status):
    with pytest.raises(InvalidTransition):
        in_status(status).dead_letter()


def test_only_a_pending_run_can_be_marked_dispatched():
    assert a_run().dispatched(at=T0 + SECOND).dispatched_at == T0 + SECOND
    for status in set(S) - {S.PENDING}:
        with pytest.raises(InvalidTransition):
            in_status(status).dispatched(at=T0 + SECOND)


@given(st.text(max_size=3 * BODY_EXCERPT_LIMIT))
def test_a_body_excerpt_is_cut_to_its_limit_and_kept_whole_below_it(body):
    excerpt = RunResult(body_excerpt=body).body_excerpt
    assert len(excerpt) <= BODY_EXCERPT_LIMIT
    assert body.startswith(excerpt)
    if len(body) <= BODY_EXCERPT_LIMIT:
        assert excerpt == body


@given(st.text(max_size=3 * ERROR_LIMIT))
def test_an_error_is_cut_to_its_limit_and_kept_whole_below_it(error):
    failed = a_run().start(at=T0, worker="w").fail(at=T0 + SECOND, error=error)
    assert len(failed.error) <= ERROR_LIMIT
    assert error.startswith(failed.error)
    if len(error) <= ERROR_LIMIT:
        assert failed.error == error


def test_a_scheduled_run_is_pending_and_keyed_by_its_slot_time_in_utc():
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    berlin = datetime(2026, 3, 29, 3, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    run = Run.scheduled(
        tenant_id="acme", endpoint_id="e-1", job_id=None, source=RunSource.BASELINE_CRON, scheduled_at=berlin, now=T0
    )
    assert run.status is S.PENDING
    assert run.attempt == 1
    assert run.slot == "2026-03-29T01:00:00.000000Z" == slot_key(berlin.astimezone(timezone.utc))


def test_run_sources_use_the_public_spelling():
    assert {source.value for source in RunSource} == {
        "baseline-cron", "baseline-interval", "hint-interval", "hint-oneshot", "clamped-min",
        "clamped-max", "manual", "retry", "workflow", "event",
    }
