"""Endpoint health (``domain.health``): the summary of an endpoint's recent runs."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.endpoints import EndpointStatus
from domain.health import FINAL_STATUSES, finished_window, latest, summarize
from domain.runs import Run, RunSource, RunStatus
from tests.builders import T0, a_run, an_endpoint

S = RunStatus
SECOND = timedelta(seconds=1)


def ended(endpoint, status: RunStatus, at_s: float, *, error: str | None = None, dead: bool = False) -> Run:
    """A run of ``endpoint`` that ended in ``status`` ``at_s`` seconds after T0 (due a second earlier)."""
    at = T0 + at_s * SECOND
    run = a_run(endpoint=endpoint, scheduled_at=at - SECOND, slot=f"s{at_s}")
    if status is S.PENDING:
        return run
    run = run.start(at=at - SECOND, worker="w")
    moves = {
        S.RUNNING: lambda: run,
        S.SUCCEEDED: lambda: run.succeed(at=at),
        S.FAILED: lambda: run.fail(at=at, error=error or "boom"),
        S.TIMED_OUT: lambda: run.time_out(at=at),
        S.EXPIRED: lambda: run.expire(at=at),
        S.CANCELED: lambda: run.cancel(at=at),
    }
    run = moves[status]()
    return run.dead_letter() if dead else run


def health(endpoint, recent, **overrides):
    fields = dict(last_success=None, last_failure=None, pending=0, running=0, dead_letters=[], now=T0 + 1000 * SECOND)
    fields.update(overrides)
    return summarize(endpoint, recent=recent, **fields)


def test_the_success_rate_leaves_canceled_runs_out():
    endpoint = an_endpoint()
    recent = [
        ended(endpoint, S.SUCCEEDED, 5),
        ended(endpoint, S.CANCELED, 4),
        ended(endpoint, S.FAILED, 3),
        ended(endpoint, S.SUCCEEDED, 2),
        ended(endpoint, S.TIMED_OUT, 1),
    ]

    summary = health(endpoint, recent)

    assert summary.finished == 5
    assert summary.success_rate == 2 / 4
    assert summary.counts == {S.SUCCEEDED: 2, S.FAILED: 1, S.CANCELED: 1, S.TIMED_OUT: 1, S.EXPIRED: 0}


def test_only_the_newest_finished_runs_of_the_window_count():
    endpoint = an_endpoint()
    recent = [
        ended(endpoint, S.PENDING, 9),
        ended(endpoint, S.FAILED, 8),
        ended(endpoint, S.RUNNING, 7),
        ended(endpoint, S.FAILED, 6),
        ended(endpoint, S.SUCCEEDED, 5),
        ended(endpoint, S.SUCCEEDED, 4),
    ]

    summary = health(endpoint, recent, window=3)

    assert summary.window == 3
    assert summary.finished == 3
    assert summary.counts[S.FAILED] == 2 and summary.counts[S.SUCCEEDED] == 1
    assert summary.success_rate == 1 / 3


def test_an_endpoint_without_finished_runs_has_no_success_rate():
    endpoint = an_endpoint()

    only_canceled = health(endpoint, [ended(endpoint, S.CANCELED, 1)])
    none = health(endpoint, [ended(endpoint, S.PENDING, 1)])

    assert only_canceled.success_rate is None and only_canceled.finished == 1
    assert none.success_rate is None and none.finished == 0
    assert none.last_success is None and none.last_failure is None


def test_last_success_and_failure_name_the_run_its_time_and_error():
    endpoint = an_endpoint()
    success = ended(endpoint, S.SUCCEEDED, 10)
    failure = ended(endpoint, S.FAILED, 20, error="HTTP 503")

    summary = health(endpoint, [], last_success=success, last_failure=failure)

    assert (summary.last_success.run_id, summary.last_success.at, summary.last_success.error) == (
        success.id, T0 + 10 * SECOND, None,
    )
    assert (summary.last_failure.run_id, summary.last_failure.at, summary.last_failure.status) == (
        failure.id, T0 + 20 * SECOND, S.FAILED,
    )
    assert summary.last_failure.error == "HTTP 503"


def test_latest_picks_the_run_that_ended_last_whatever_its_failure():
    endpoint = an_endpoint()
    failed = ended(endpoint, S.FAILED, 5)
    expired = ended(endpoint, S.EXPIRED, 30)
    timed_out = ended(endpoint, S.TIMED_OUT, 10)

    assert latest([failed, None, expired, timed_out]) is expired
    assert latest([None]) is None


def test_dead_letters_and_the_endpoints_state_are_reported():
    endpoint = an_endpoint(failure_count=3, auto_pause_after=5, paused_until=T0 + 2000 * SECOND)
    dead = [ended(endpoint, S.FAILED, 9, dead=True), ended(endpoint, S.FAILED, 8, dead=True)]

    summary = health(endpoint, dead, dead_letters=dead, pending=2, running=1)

    assert summary.dead_lettered is True
    assert summary.dead_letters == 2
    assert summary.last_dead_letter.run_id == dead[0].id
    assert (summary.pending, summary.running) == (2, 1)
    assert summary.paused is True  # a timed pause that has not ended
    assert (summary.failure_count, summary.auto_pause_after) == (3, 5)
    assert (summary.next_run_at, summary.next_run_source) == (T0 + 60 * SECOND, RunSource.BASELINE_INTERVAL)


def test_a_timed_pause_that_ended_is_not_a_pause_but_an_indefinite_one_is():
    ended_pause = an_endpoint(paused_until=T0 + SECOND)
    indefinite = an_endpoint(status=EndpointStatus.PAUSED, next_run_at=None, next_run_source=None)

    assert health(ended_pause, []).paused is False
    assert health(indefinite, []).paused is True
    assert health(an_endpoint(), []).dead_lettered is False


@given(st.lists(st.sampled_from(list(RunStatus)), max_size=40), st.integers(min_value=1, max_value=30))
def test_the_counts_add_up_to_the_finished_runs_and_the_rate_stays_in_bounds(statuses, window):
    endpoint = an_endpoint()
    recent = [ended(endpoint, status, 100 - index) for index, status in enumerate(statuses)]

    summary = health(endpoint, recent, window=window)

    assert summary.finished == min(window, sum(status.final for status in statuses))
    assert sum(summary.counts.values()) == summary.finished
    assert set(summary.counts) == set(FINAL_STATUSES)
    assert summary.success_rate is None or 0 <= summary.success_rate <= 1
    assert finished_window(recent, window) == [run for run in recent if run.status.final][:window]
