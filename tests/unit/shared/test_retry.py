"""The one retry policy: backoff grows to its cap with jitter, Retry-After is honoured up to the stated cap,
attempts and budget end in the last error (no wait crossing the budget), only dualbus's own errors are
retried, and each retry is logged at DEBUG."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import pytest
import stamina
import tenacity

from dualbus.shared.errors import PermanentError, ThrottledError, TransientError
from dualbus.shared.retry import RETRY_AFTER_CAP_SECONDS, RetryPolicy, honoured_retry_after
from tests.unit.retry_waits import recorded_waits


@pytest.fixture
def waits():
    """The waits stamina schedules (real ones: testing mode off), in order."""
    with recorded_waits() as scheduled:
        yield scheduled


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


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "failure",
    [TransientError("down"), ThrottledError("429", retry_after=5.0)],
    ids=["backoff", "retry-after"],
)
async def test_the_last_wait_ends_with_the_budget(waits, failure):
    """A wait that would end past the budget is cut to end with it: the last attempt starts by then."""
    operation = Failing(*(failure for _ in range(1000)))
    policy = RetryPolicy(attempts=None, budget_seconds=0.2, initial_wait=5.0, max_wait=10.0, jitter=0.0)
    started = time.monotonic()
    with pytest.raises(type(failure)):
        await policy.call(operation)
    assert len(waits) == 1
    assert 0.0 < waits[0] <= 0.2
    assert operation.calls == 2
    assert time.monotonic() - started < 2.0


def test_a_blocking_call_keeps_the_budget_too(waits):
    """call_blocking cuts its last wait at the budget's end the same way."""
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        raise TransientError("down")

    policy = RetryPolicy(attempts=None, budget_seconds=0.1, initial_wait=5.0, jitter=0.0)
    with pytest.raises(TransientError):
        policy.call_blocking(down)
    assert calls == 2
    assert 0.0 < waits[0] <= 0.1


@pytest.mark.asyncio
async def test_a_wait_within_the_budget_is_left_whole(waits):
    """Only a wait crossing the budget is cut: one well within it is stamina's own."""
    policy = RetryPolicy(attempts=None, budget_seconds=30.0, initial_wait=0.01, max_wait=0.04, jitter=0.0)
    assert await policy.call(Failing(TransientError("busy"), TransientError("busy"))) == "done"
    assert waits == pytest.approx([0.01, 0.02])


@pytest.mark.asyncio
async def test_each_retry_is_logged_at_debug_not_as_a_warning(caplog):
    """A throttled target retried many times writes DEBUG lines, not a WARNING per retry."""
    caplog.set_level(logging.DEBUG)
    operation = Failing(*(ThrottledError("429", retry_after=1.0) for _ in range(3)))
    with stamina.set_testing(True, attempts=5):
        assert await RetryPolicy().call(operation) == "done"
    retries = [record for record in caplog.records if record.name == "dualbus.retry"]
    assert [record.levelno for record in retries] == [logging.DEBUG] * 3
    assert "ThrottledError" in retries[0].getMessage()
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


async def _after(policy: RetryPolicy, failure: Exception, *, ago: float, numbers: list[int]) -> None:
    """Attempts after ``failure``, made outside ``ago`` seconds back; each fails and is noted."""
    async for attempt in policy.retrying_after(failure, started=time.monotonic() - ago):
        with attempt:
            numbers.append(attempt.num)
            raise TransientError(f"try {attempt.num}")


@pytest.mark.asyncio
async def test_attempts_after_a_first_one_made_outside_count_it(waits):
    """retrying_after hands the first failure to stamina: attempts go on from number 2, waits as usual."""
    policy = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=1.0, jitter=0.0)
    numbers: list[int] = []
    with pytest.raises(TransientError, match="try 3"):
        await _after(policy, TransientError("first"), ago=0.0, numbers=numbers)
    assert numbers == [2, 3]
    assert waits == pytest.approx([0.01, 0.02])


@pytest.mark.asyncio
async def test_a_first_failure_the_policy_does_not_retry_is_raised_at_once(waits):
    failure = PermanentError("400", reason="TargetRejected")
    numbers: list[int] = []
    with pytest.raises(PermanentError) as raised:
        await _after(RetryPolicy(), failure, ago=0.0, numbers=numbers)
    assert raised.value is failure
    assert (numbers, waits) == ([], [])


@pytest.mark.asyncio
async def test_the_budget_counts_from_the_first_attempt_made_outside(waits):
    """A first attempt that took the whole budget leaves none: its failure is raised, nothing retried."""
    policy = RetryPolicy(attempts=None, budget_seconds=5.0, initial_wait=0.01, jitter=0.0)
    numbers: list[int] = []
    with pytest.raises(TransientError, match="slow"):
        await _after(policy, TransientError("slow"), ago=6.0, numbers=numbers)
    assert (numbers, waits) == ([], [])


@pytest.mark.asyncio
async def test_the_last_wait_after_an_outside_attempt_ends_with_the_budget(waits):
    """What the outside attempt took is off the budget: the wait is cut to what is left of it."""
    policy = RetryPolicy(attempts=None, budget_seconds=1.0, initial_wait=5.0, max_wait=10.0, jitter=0.0)
    numbers: list[int] = []
    with pytest.raises(TransientError):
        await _after(policy, TransientError("down"), ago=0.9, numbers=numbers)
    assert numbers == [2]
    assert len(waits) == 1
    assert 0.0 < waits[0] <= 0.1


@pytest.mark.asyncio
async def test_an_operation_that_succeeds_at_once_sets_up_no_retry_context(monkeypatch):
    """call() tries first: stamina's retry context is made only once an attempt failed."""
    contexts = []
    made = stamina.retry_context

    def counted(*args, **kwargs):
        contexts.append(1)
        return made(*args, **kwargs)

    monkeypatch.setattr(stamina, "retry_context", counted)
    assert await RetryPolicy().call(Failing()) == "done"
    assert contexts == []
    with stamina.set_testing(True, attempts=3):
        assert await RetryPolicy().call(Failing(TransientError("busy"))) == "done"
    assert contexts == [1]


async def _failing_each(attempts: AsyncIterator[stamina.Attempt], numbers: list[int]) -> None:
    """Fail every attempt ``attempts`` yields, noting its number, until they end in the last failure."""
    while True:
        attempt = await anext(attempts)
        with attempt:
            numbers.append(attempt.num)
            raise TransientError(f"try {attempt.num}")


class _LateStartClock:
    """tenacity's clock (stamina keeps time with tenacity), read ``late`` seconds ahead while ``starting``.

    stamina's clock for its ``timeout`` starts a moment after the policy computed that timeout; under load the
    moment can last milliseconds. Reading the start ahead stands for such a late start, of a chosen length.
    """

    def __init__(self, late: float) -> None:
        self.late = late
        self.starting = False

    def monotonic(self) -> float:
        return time.monotonic() + (self.late if self.starting else 0.0)


@pytest.mark.asyncio
async def test_a_spent_budget_ends_the_retries_though_staminas_own_clock_started_late(monkeypatch, waits):
    """Once the budget is spent no attempt follows, even while stamina's timeout, begun 50 ms after the
    budget's clock, has not run out (it would retry at once, again and again, until it did)."""
    clock = _LateStartClock(late=0.05)
    monkeypatch.setattr(tenacity, "time", clock)  # the module tenacity reads its time from
    policy = RetryPolicy(attempts=None, budget_seconds=0.1, initial_wait=5.0, jitter=0.0)
    attempts = policy.retrying_after(TransientError("first"), started=time.monotonic())
    clock.starting = True
    iterator = aiter(attempts)  # stamina starts its clock here
    clock.starting = False
    numbers: list[int] = []
    with pytest.raises(TransientError, match="try 2"):
        await _failing_each(iterator, numbers)
    assert numbers == [2]
    assert len(waits) == 1
