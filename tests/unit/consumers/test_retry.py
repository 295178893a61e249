"""Backoff honours Retry-After, grows and is capped, stays within its budget, and can be switched off."""

from __future__ import annotations

import time

import pytest

from dualbus.consumers import RetryPolicy, is_testing, set_testing


@pytest.fixture(autouse=True)
def real_waits():
    set_testing(False)
    yield
    set_testing(False)


def test_retry_after_wins_over_backoff():
    """A server's Retry-After is used as given (within the cap), whatever the attempt number."""
    policy = RetryPolicy(initial_wait=0.5, max_wait=30.0)
    assert policy.wait_for(1, 12.0) == 12.0
    assert policy.wait_for(9, 0.25) == 0.25
    assert policy.wait_for(1, 999.0) == 30.0


def test_backoff_grows_exponentially_up_to_the_cap():
    """Without Retry-After the wait doubles per attempt (with bounded jitter) and stops at max_wait."""
    policy = RetryPolicy(initial_wait=1.0, max_wait=8.0, jitter=0.0)
    assert [policy.wait_for(n, None) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    jittery = RetryPolicy(initial_wait=1.0, jitter=0.25)
    assert all(0.75 <= jittery.wait_for(1, None) <= 1.25 for _ in range(50))


def test_testing_mode_switches_waits_off():
    """set_testing(True) makes every wait zero, even when the server asked for one."""
    set_testing(True)
    try:
        assert is_testing()
        assert RetryPolicy().wait_for(5, 60.0) == 0.0
    finally:
        set_testing(False)
    assert not is_testing()


@pytest.mark.asyncio
async def test_pauses_never_outlast_the_budget():
    """A pause is cut to what is left of the budget, after which the state reports it spent."""
    state = RetryPolicy(budget_seconds=0.2, initial_wait=5.0, jitter=0.0).start()
    started = time.monotonic()
    await state.pause(None)
    assert time.monotonic() - started < 1.0
    assert state.attempts == 1
    assert state.spent
