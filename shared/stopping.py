"""Waiting for something unless the process is asked to stop first."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["until_either"]


async def until_either(stop: asyncio.Event, other: Coroutine[Any, Any, object]) -> None:
    """Return once ``stop`` is set or ``other`` is done, whichever comes first; the other is cancelled."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(other)]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
