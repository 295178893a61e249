"""Calls due at a time on the broker's clock, for the AMQP layer above the bus (a link's token expiry).

They run with the bus's other timers, so a test that moves the clock reaches them as it reaches lock and
TTL expiry, and the server's loop wakes for them as it wakes for those.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

__all__ = ["Alarm", "Alarms"]


class Alarm:
    """One call waiting for its time; cancelled, it lets go of the call (and what the call holds) at once."""

    __slots__ = ("call", "due_ms")

    def __init__(self, due_ms: int, call: Callable[[int], None]) -> None:
        self.due_ms = due_ms
        self.call: Callable[[int], None] | None = call

    def cancel(self) -> None:
        """Never make the call: what it would act on went away (a connection closed)."""
        self.call = None


class Alarms:
    """Calls waiting for their time (milliseconds on the broker's clock)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Alarm]] = []
        # Breaks ties between calls due together, which cannot be compared themselves.
        self._order = itertools.count()

    def at(self, due_ms: int, call: Callable[[int], None]) -> Alarm:
        """Call ``call(now)`` once the timers run at or after ``due_ms``; the alarm can be cancelled."""
        alarm = Alarm(due_ms, call)
        heapq.heappush(self._heap, (due_ms, next(self._order), alarm))
        return alarm

    def ring(self, now: int) -> None:
        """Make every call due by ``now``; one set for ``now`` or earlier meanwhile runs in this turn."""
        while self._heap and self._heap[0][0] <= now:
            _, _, alarm = heapq.heappop(self._heap)
            if alarm.call is not None:
                alarm.call(now)

    def next_due_ms(self) -> int | None:
        """When ``ring`` next has work, if ever."""
        return self._heap[0][0] if self._heap else None
