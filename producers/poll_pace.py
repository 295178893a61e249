"""How soon a Dataverse table is read again: sooner while it is changing, within a budget of extra reads.

Change tracking has no push and no read across tables: each table's changes are one request. A table whose
last read published changes is read again after ``busy_interval`` instead of ``interval``, as long as the
budget allows. Every early read takes a token from a bucket filled at ``extra_per_second`` (holding at most
one second's worth), so a producer makes at most ``tables / interval + extra_per_second`` reads a second.
Those reads count towards the service protection limits of the application user that the consumers write
as, too: 6,000 requests per user in a sliding 5 minutes
(https://learn.microsoft.com/power-apps/developer/data-platform/api-limits).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PollPace"]


class PollPace:
    """The wait before a table's next read, from what its last read found; shared by all tables."""

    def __init__(
        self,
        interval: float,
        busy_interval: float,
        extra_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.busy_interval = min(busy_interval, interval)
        self._rate = extra_per_second
        self._capacity = max(extra_per_second, 1.0) if extra_per_second > 0 else 0.0
        self._tokens = self._capacity
        self._clock = clock
        self._filled_at = clock()

    def after(self, published: int) -> float:
        """How long after its last read started a table is read again, given how many changes it published."""
        if published > 0 and self.busy_interval < self.interval and self._take():
            return self.busy_interval
        return self.interval

    def _take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._filled_at) * self._rate)
        self._filled_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
