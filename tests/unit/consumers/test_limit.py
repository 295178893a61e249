"""Adaptive concurrency halves on throttling, recovers on success, and never lets more run than allowed."""

from __future__ import annotations

import asyncio

import pytest

from dualbus.consumers import AdaptiveLimit


@pytest.mark.asyncio
async def test_throttling_halves_and_success_recovers():
    """Each 429 halves the limit (not below one); enough successes in a row add one slot back."""
    limit = AdaptiveLimit(8, recovery=3, cooldown=0.0)
    await limit.throttled()
    assert limit.limit == 4
    for _ in range(3):
        await limit.throttled()
    assert limit.limit == 1
    for _ in range(3 * 4):
        await limit.succeeded()
    assert limit.limit == 5
    for _ in range(3 * 10):
        await limit.succeeded()
    assert limit.limit == 8


@pytest.mark.asyncio
async def test_at_most_limit_slots_are_held_at_once():
    """With the limit at two, no more than two holders are ever inside at the same time."""
    limit = AdaptiveLimit(4)
    await limit.throttled()
    inside, peak = 0, 0

    async def work() -> None:
        nonlocal inside, peak
        async with limit.slot():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(work() for _ in range(10)))
    assert peak == 2
    assert limit.in_use == 0


@pytest.mark.asyncio
async def test_one_burst_of_429s_halves_once():
    """Writes hearing the same 429 at once halve the limit once; after the cooldown it halves again."""
    now = [100.0]
    limit = AdaptiveLimit(32, cooldown=1.0, clock=lambda: now[0])
    for _ in range(20):
        await limit.throttled()
    assert limit.limit == 16
    now[0] += 1.5
    await limit.throttled()
    assert limit.limit == 8


def test_a_limit_below_one_is_refused():
    """A maximum under one would deadlock every write, so it is refused."""
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveLimit(0)
