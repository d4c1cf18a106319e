"""Retry backoff (``domain.retry.RetryPolicy``)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from domain.retry import RetryPolicy

SECOND = timedelta(seconds=1)


@st.composite
def policies(draw, *, jitter: bool | None = None) -> RetryPolicy:
    backoff = timedelta(milliseconds=draw(st.integers(1, 120_000)))
    cap = backoff + timedelta(milliseconds=draw(st.integers(0, 3_600_000)))
    return RetryPolicy(
        max_attempts=draw(st.integers(1, 100)),
        backoff=backoff,
        backoff_max=cap,
        jitter=draw(st.booleans()) if jitter is None else jitter,
    )


def nominal(policy: RetryPolicy, attempt: int) -> timedelta:
    """``backoff * 2 ** (attempt - 1)`` capped, in integer microseconds (no overflow)."""
    wait = (policy.backoff // timedelta(microseconds=1)) * 2 ** max(attempt - 1, 0)
    return min(timedelta(microseconds=min(wait, policy.backoff_max // timedelta(microseconds=1))), policy.backoff_max)


attempts = st.integers(1, 200)
fractions = st.floats(0, 1)


@given(policies(jitter=True), attempts, fractions)
def test_a_jittered_delay_lies_between_half_the_nominal_wait_and_the_nominal_wait(policy, attempt, rand):
    delay = policy.delay(attempt, rand=rand)
    assert nominal(policy, attempt) / 2 <= delay <= nominal(policy, attempt)


@given(policies(jitter=False), attempts, fractions)
def test_without_jitter_the_delay_is_the_nominal_wait_whatever_the_random_draw(policy, attempt, rand):
    assert policy.delay(attempt, rand=rand) == nominal(policy, attempt)


@given(policies(jitter=False), attempts)
def test_without_jitter_the_delay_never_shrinks_as_attempts_grow(policy, attempt):
    assert policy.delay(attempt + 1) >= policy.delay(attempt)


@given(policies(), attempts, st.floats(-10, 10))
def test_the_delay_is_never_above_the_cap_nor_negative(policy, attempt, rand):
    delay = policy.delay(attempt, rand=rand)
    assert timedelta(0) < delay <= policy.backoff_max


@given(policies(jitter=False))
def test_the_delay_doubles_until_it_reaches_the_cap(policy):
    assume(policy.backoff * 4 <= policy.backoff_max)
    assert policy.delay(1) == policy.backoff
    assert policy.delay(2) == policy.backoff * 2
    assert policy.delay(3) == policy.backoff * 4


def test_a_huge_attempt_number_is_capped_without_overflow():
    policy = RetryPolicy(backoff=SECOND, backoff_max=timedelta(minutes=5), jitter=False)
    assert policy.delay(10_000) == timedelta(minutes=5)


def test_the_jitter_draw_spans_the_upper_half_of_the_window():
    policy = RetryPolicy(backoff=10 * SECOND, backoff_max=timedelta(minutes=5), jitter=True)
    assert policy.delay(1, rand=0.0) == 5 * SECOND
    assert policy.delay(1, rand=1.0) == 10 * SECOND


@given(st.integers(1, 100), st.integers(1, 200))
def test_another_attempt_is_allowed_only_below_max_attempts(max_attempts, attempt):
    assert RetryPolicy(max_attempts=max_attempts).allows_another(attempt) == (attempt < max_attempts)


def test_the_default_policy_does_not_retry():
    assert not RetryPolicy().allows_another(1)
