"""Waiting for an operation unless a stop comes first, keeping what the operation got meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from dualbus.shared.stopping import done_unless_stopped


@pytest.mark.asyncio
async def test_an_operation_done_before_the_stop_gives_its_result() -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    queue.put_nowait("session")
    got = await done_unless_stopped(asyncio.Event(), queue.get())
    assert got.result() == "session"


@pytest.mark.asyncio
async def test_a_stop_first_cancels_the_operation_and_takes_nothing() -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    stop = asyncio.Event()
    asyncio.get_running_loop().call_soon(stop.set)
    got = await done_unless_stopped(stop, queue.get())
    assert got.cancelled()
    queue.put_nowait("later")
    assert queue.get_nowait() == "later"  # the cancelled get left no claim on the queue


@pytest.mark.asyncio
async def test_an_operation_done_at_the_moment_of_the_stop_keeps_its_result() -> None:
    semaphore = asyncio.Semaphore(1)
    stop = asyncio.Event()
    stop.set()
    got = await done_unless_stopped(stop, semaphore.acquire())
    assert not got.cancelled()
    assert got.result() is True
    assert semaphore.locked()  # acquired, and the caller knows it: not lost to the stop


@pytest.mark.parametrize("turns_between", [0, 1, 2, 3])
@pytest.mark.asyncio
async def test_a_stop_near_the_operations_end_neither_loses_nor_leaks(turns_between: int) -> None:
    """Whatever the order of the stop and the release, a permit is either the caller's (a result) or back
    with the semaphore (cancelled): never both, never neither."""
    semaphore = asyncio.Semaphore(0)
    stop = asyncio.Event()

    async def release_then_stop() -> None:
        semaphore.release()
        for _ in range(turns_between):
            await asyncio.sleep(0)
        stop.set()

    releasing = asyncio.create_task(release_then_stop())
    got = await done_unless_stopped(stop, semaphore.acquire())
    await releasing
    assert got.cancelled() == (not semaphore.locked())
