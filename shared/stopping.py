"""Waiting for something unless the process is asked to stop first."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["done_unless_stopped", "until_either"]

T = TypeVar("T")


async def until_either(stop: asyncio.Event, other: Coroutine[Any, Any, object]) -> None:
    """Return once ``stop`` is set or ``other`` is done, whichever comes first; the other is cancelled."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(other)]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def done_unless_stopped(stop: asyncio.Event, operation: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """Run ``operation`` until it is done or ``stop`` is set; its future, cancelled when the stop came first.

    An operation that finished at the very moment of the stop keeps its result (a queue's item taken, a
    semaphore acquired), so that the caller can give it back instead of losing it. Not so when the caller
    itself is cancelled meanwhile: the cancellation goes on, and what the operation got goes with it.
    """
    running = asyncio.ensure_future(operation)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        running.cancel()
        await asyncio.wait({running})
    return running
