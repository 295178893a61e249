"""Runs a coroutine on uvloop where it is installed (every platform but Windows), else on asyncio's loop.

Every process of the pipeline spends much of its CPU in its event loop: the Service Bus SDK's AMQP frames,
httpx's requests, uvicorn's servers. At 100 changes/s both ways on two cores the pipeline's processes took
50.5 CPU s in 30 s on uvloop and 58.1 on asyncio's loop (bench/live.py, docs/operations.md). uvicorn takes
uvloop by itself when it can import it (``loop="auto"``); the consumers, producers and commands take it here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

_T = TypeVar("_T")

_UVLOOP: Callable[[], asyncio.AbstractEventLoop] | None
try:
    import uvloop

    _UVLOOP = uvloop.new_event_loop
except ImportError:  # Windows, where uvloop does not build: asyncio's loop does the same, slower
    _UVLOOP = None


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop maker, or None (asyncio's own loop) where uvloop is not installed."""
    return _UVLOOP


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(main)``, on uvloop where it is installed."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
