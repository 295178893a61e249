"""The one retry policy: backoff grows to its cap with jitter, Retry-After is honoured up to the stated cap,
attempts and budget end in the last error, and only dualbus's own errors are retried."""

from __future__ import annotations

import time

import pytest
import stamina
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from dualbus.shared.errors import PermanentError, ThrottledError, TransientError
from dualbus.shared.retry import RETRY_AFTER_CAP_SECONDS, RetryPolicy, honoured_retry_after


@pytest.fixture
def waits():
    """The waits stamina schedules (real ones: testing mode off), in order."""
    scheduled: list[float] = []

    def record(details: RetryDetails) -> None:
        scheduled.append(details.wait_for)

    set_on_retry_hooks([record])
    with stamina.set_testing(False):
        yield scheduled
    set_on_retry_hooks(None)


class Failing:
    """Raises the given errors in turn, then answers "done"; counts its calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


@pytest.mark.asyncio
async def test_backoff_doubles_up_to_max_wait(waits):
    """Without jitter the waits are initial_wait doubled per retry, never beyond max_wait."""
    policy = RetryPolicy(initial_wait=0.01, max_wait=0.04, jitter=0.0)
    operation = Failing(*(TransientError("busy") for _ in range(5)))
    assert await policy.call(operation) == "done"
    assert waits == pytest.approx([0.01, 0.02, 0.04, 0.04, 0.04])


@pytest.mark.asyncio
async def test_backoff_carries_jitter(waits):
    """The jitter spreads the same retry's wait between initial_wait and initial_wait + jitter."""
    policy = RetryPolicy(initial_wait=0.001, max_wait=1.0, jitter=0.01)
    for _ in range(8):
        await policy.call(Failing(TransientError("busy")))
    assert all(0.001 <= wait <= 0.011 for wait in waits)
    assert len(set(waits)) > 1


@pytest.mark.asyncio
async def test_retry_after_replaces_the_backoff(waits):
    """A server's Retry-After is waited for as given, however long the backoff would have been."""
    policy = RetryPolicy(initial_wait=20.0, max_wait=30.0)
    assert await policy.call(Failing(ThrottledError("429", retry_after=0.02))) == "done"
    assert waits == [0.02]


def test_retry_after_above_the_cap_is_clamped():
    """A Retry-After beyond RETRY_AFTER_CAP_SECONDS waits the cap; below it, as given; never negative."""
    policy = RetryPolicy()
    assert RETRY_AFTER_CAP_SECONDS == 30.0
    assert policy.backoff(ThrottledError("429", retry_after=600.0)) == RETRY_AFTER_CAP_SECONDS
    assert policy.backoff(TransientError("503", retry_after=7.0)) == 7.0
    assert honoured_retry_after(-3.0) == 0.0
    assert honoured_retry_after(float("nan")) == 0.0
    # No Retry-After: stamina's exponential backoff applies.
    assert policy.backoff(TransientError("503")) is True


@pytest.mark.asyncio
async def test_spent_attempts_raise_the_last_failure():
    """After ``attempts`` failures the last TransientError is raised, not wrapped."""
    operation = Failing(*(TransientError(f"busy {n}") for n in range(5)))
    with stamina.set_testing(True, attempts=10, cap=True), pytest.raises(TransientError, match="busy 2"):
        await RetryPolicy(attempts=3).call(operation)
    assert operation.calls == 3


@pytest.mark.asyncio
@pytest.mark.usefixtures("waits")
async def test_a_spent_budget_raises_the_last_failure():
    """Once ``budget_seconds`` have passed no retry is made: the last failure is raised."""
    operation = Failing(*(TransientError("down") for _ in range(1000)))
    policy = RetryPolicy(attempts=None, budget_seconds=0.1, initial_wait=0.01, max_wait=0.02, jitter=0.0)
    started = time.monotonic()
    with pytest.raises(TransientError, match="down"):
        await policy.call(operation)
    assert 0.1 <= time.monotonic() - started < 1.0
    assert 1 < operation.calls < 20


@pytest.mark.asyncio
async def test_a_budget_of_nothing_is_one_attempt():
    """budget_seconds=0 tries once (stamina would warn on a zero timeout)."""
    operation = Failing(TransientError("down"))
    with pytest.raises(TransientError):
        await RetryPolicy(budget_seconds=0.0).call(operation)
    assert operation.calls == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("error", [PermanentError("400", reason="TargetRejected"), KeyError("x")])
async def test_only_what_the_policy_names_is_retried(error):
    """A permanent error, or any exception outside the policy's ``on``, is raised at the first attempt."""
    operation = Failing(error)
    with stamina.set_testing(True, attempts=5), pytest.raises(type(error)):
        await RetryPolicy().call(operation)
    assert operation.calls == 1


@pytest.mark.asyncio
async def test_testing_mode_switches_the_waits_off():
    """stamina's testing mode retries at once, even when the server asked for a long wait."""
    operation = Failing(ThrottledError("429", retry_after=25.0), TransientError("503"))
    started = time.monotonic()
    with stamina.set_testing(True, attempts=3):
        assert await RetryPolicy(initial_wait=20.0).call(operation) == "done"
    assert time.monotonic() - started < 1.0
    assert not stamina.is_testing()


def test_blocking_calls_retry_the_same_way(waits):
    """call_blocking retries a blocking operation under the same policy, Retry-After included."""
    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ThrottledError("429", retry_after=0.01)
        return "done"

    assert RetryPolicy(initial_wait=20.0).call_blocking(flaky) == "done"
    assert waits == [0.01]
