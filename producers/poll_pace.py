"""How soon a Dataverse table is read again: sooner while it is changing, within a budget of extra reads.

Change tracking has no push and no read across tables: each table's changes are one request. A table that
published changes in the last ``busy_for`` seconds is busy (changes come in bursts, so a read that finds
nothing in a table being changed is common). The busy tables share ``extra_per_second`` reads a second
evenly: each is read again after ``busy tables / extra_per_second`` seconds, never sooner than
``busy_interval`` nor later than ``interval``; the other tables every ``interval``. So a producer makes
at most ``(tables - busy) / interval + min(busy / busy_interval, extra_per_second)`` reads a second (a
table keeps the wait it was given while fewer tables were busy, so the bound can be passed for one wait):
with the defaults (eight tables, 1 s, 0.25 s, 14) 18 at most, with four busy, 5,400 per 5 minutes. They
count towards the service protection limits of the application user the producer reads as: 6,000 requests
per user and web server in a sliding 5 minutes
(https://learn.microsoft.com/power-apps/developer/data-platform/api-limits).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["PollPace"]


class PollPace:
    """The wait before each table's next read, from what its reads found; one budget for all tables."""

    def __init__(
        self,
        interval: float,
        busy_interval: float,
        extra_per_second: float,
        *,
        # 10 s: with 2 s a table changed every few seconds (the second map's contacts, at 50 changes/s) was
        # found quiet now and then, and its next change waited for the interval's read.
        busy_for: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.busy_interval = min(busy_interval, interval)
        self._extra = extra_per_second
        self._busy_for = busy_for
        self._clock = clock
        self._last_change: list[float] = []

    def table(self) -> Callable[[int], float]:
        """One table's pace: given how many changes a read published, how long after it started the next
        read starts."""
        slot = len(self._last_change)
        self._last_change.append(-math.inf)

        def after(published: int) -> float:
            now = self._clock()
            if published > 0:
                self._last_change[slot] = now
            if now - self._last_change[slot] > self._busy_for or self._extra <= 0:
                return self.interval
            busy = sum(1 for changed in self._last_change if now - changed <= self._busy_for)
            return min(self.interval, max(self.busy_interval, busy / self._extra))

        return after
