"""A loop's backoff (``shared.retry.Backoff``): waits grow with the failures in a row, start over after a
success, end at once on stop, and never give up."""

from __future__ import annotations

import asyncio

import pytest
import stamina

from dualbus.shared.errors import PermanentError, TransientError
from dualbus.shared.retry import Backoff, RetryPolicy
from tests.unit.retry_waits import recorded_waits

# Waits short enough to sit out, doubling without jitter so that each is known.
_TINY = RetryPolicy(attempts=None, initial_wait=0.001, max_wait=0.004, jitter=0.0)
# How long a test waits for something that must happen at once before it fails.
_AT_ONCE = 5.0


@pytest.mark.asyncio
async def test_waits_grow_with_failures_in_a_row_and_start_over_after_a_success():
    """Each failure in a row waits the next backoff, up to max_wait; after reset the first one again."""
    backoff = Backoff(_TINY, asyncio.Event())
    with recorded_waits() as waits:
        for _ in range(4):
            await backoff.wait(TransientError("down"))
        backoff.reset()
        for _ in range(2):
            await backoff.wait(TransientError("down"))
    assert waits == pytest.approx([0.001, 0.002, 0.004, 0.004, 0.001, 0.002])


@pytest.mark.asyncio
async def test_stop_ends_a_wait_at_once():
    """A wait of a minute ends as soon as stop is set; the next failure starts from the first wait."""
    stop = asyncio.Event()
    backoff = Backoff(RetryPolicy(attempts=None, initial_wait=60.0, max_wait=60.0, jitter=0.0), stop)
    with recorded_waits() as waits:
        waiting = asyncio.create_task(backoff.wait(TransientError("down")))
        await asyncio.wait_for(waits.scheduled.wait(), _AT_ONCE)
        assert not waiting.done()
        stop.set()
        await asyncio.wait_for(waiting, _AT_ONCE)
        stop.clear()
        waits.scheduled.clear()
        again = asyncio.create_task(backoff.wait(TransientError("down")))
        await asyncio.wait_for(waits.scheduled.wait(), _AT_ONCE)
        stop.set()
        await asyncio.wait_for(again, _AT_ONCE)
    assert waits == [60.0, 60.0]


@pytest.mark.asyncio
async def test_a_failure_the_policy_does_not_retry_is_raised():
    """A loop backing off on TransientError raises a PermanentError instead of waiting."""
    backoff = Backoff(_TINY, asyncio.Event())
    with pytest.raises(PermanentError):
        await backoff.wait(PermanentError("400", reason="TargetRejected"))


@pytest.mark.asyncio
async def test_the_loop_never_gives_up():
    """Neither the policy's attempts nor stamina's testing mode (which caps attempts) end the waits."""
    backoff = Backoff(RetryPolicy(attempts=2, budget_seconds=0.0), asyncio.Event())
    with stamina.set_testing(True, attempts=2):
        for _ in range(5):
            await backoff.wait(TransientError("down"))
