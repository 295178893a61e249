"""side_by_side: results in order, and a failure raised as itself once the others have ended."""

from __future__ import annotations

import asyncio

import pytest

from dualbus.shared.errors import TransientError
from dualbus.shared.together import side_by_side


@pytest.mark.asyncio
async def test_operations_run_at_once_and_answer_in_order() -> None:
    """Three operations that each wait for all three to have started finish, with results in call order."""
    started = 0
    all_started = asyncio.Event()

    async def operation(n: int) -> int:
        nonlocal started
        started += 1
        if started == 3:
            all_started.set()
        await asyncio.wait_for(all_started.wait(), 5)  # one at a time would time out here
        return n * 10

    assert await side_by_side(operation(n) for n in range(3)) == [0, 10, 20]


@pytest.mark.asyncio
async def test_a_failure_lets_the_others_finish_and_is_raised_as_itself() -> None:
    """The first failure comes out as its own class, after the operation still running has finished."""
    finished = asyncio.Event()

    async def slower() -> int:
        for _ in range(5):
            await asyncio.sleep(0)
        finished.set()
        return 1

    async def failing() -> int:
        await asyncio.sleep(0)
        raise TransientError("F&O away")

    with pytest.raises(TransientError, match="F&O away"):
        await side_by_side([slower(), failing()])
    assert finished.is_set()
