"""Adaptive concurrency: how many target writes run at once, halved on throttling and regained slowly.

Additive increase, multiplicative decrease (as TCP congestion control does): a 429 halves the limit, and
``recovery`` consecutive successes add one slot back, up to the configured maximum. The writes in flight when
the target starts throttling all hear the same 429, so the limit halves at most once per ``cooldown``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

__all__ = ["AdaptiveLimit"]


class AdaptiveLimit:
    """An asyncio limiter whose capacity shrinks on throttling and grows back on success."""

    def __init__(
        self,
        maximum: int,
        *,
        recovery: int = 10,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maximum < 1:
            raise ValueError(f"the concurrency limit must be at least 1, not {maximum}")
        self.maximum = maximum
        self.limit = maximum
        self.in_use = 0
        self._recovery = recovery
        self._successes = 0
        self._cooldown = cooldown
        self._clock = clock
        self._last_cut = -math.inf
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot while a write runs."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_use < self.limit)
            self.in_use += 1
        try:
            yield
        finally:
            async with self._changed:
                self.in_use -= 1
                self._changed.notify_all()

    async def throttled(self) -> None:
        """The target said 429: halve the limit (never below one), once per cooldown."""
        async with self._changed:
            self._successes = 0
            now = self._clock()
            if now - self._last_cut >= self._cooldown:
                self.limit = max(1, self.limit // 2)
                self._last_cut = now

    async def succeeded(self) -> None:
        """A write went through: after enough of them in a row, allow one more at once."""
        async with self._changed:
            self._successes += 1
            if self._successes >= self._recovery and self.limit < self.maximum:
                self.limit += 1
                self._successes = 0
                self._changed.notify_all()
