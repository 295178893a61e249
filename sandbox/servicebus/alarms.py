"""Calls due at a time on the broker's clock, for the AMQP layer above the bus (a link's token expiry).

They run with the bus's other timers, so a test that moves the clock reaches them as it reaches lock and
TTL expiry, and the server's loop wakes for them as it wakes for those.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

__all__ = ["Alarms"]


class Alarms:
    """Calls waiting for their time (milliseconds on the broker's clock)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Callable[[int], None]]] = []
        # Breaks ties between calls due together, which cannot be compared themselves.
        self._order = itertools.count()

    def at(self, due_ms: int, call: Callable[[int], None]) -> None:
        """Call ``call(now)`` once the timers run at or after ``due_ms``."""
        heapq.heappush(self._heap, (due_ms, next(self._order), call))

    def ring(self, now: int) -> None:
        """Make every call due by ``now``; one set for ``now`` or earlier meanwhile runs in this turn."""
        while self._heap and self._heap[0][0] <= now:
            _, _, call = heapq.heappop(self._heap)
            call(now)

    def next_due_ms(self) -> int | None:
        """When ``ring`` next has work, if ever."""
        return self._heap[0][0] if self._heap else None
