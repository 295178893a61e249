"""Priority-based throttling for the F&O twin: off by default; when on, 429 with ``Retry-After``.

F&O's resource-based service protection throttles OData requests when the web servers are under pressure,
and lets an administrator map each Microsoft Entra application or user to a Low, Medium or High priority so
that low-priority integrations are throttled before high-priority ones. A throttled request gets
``429 Too Many Requests`` and a ``Retry-After`` header in seconds.
See https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/priority-based-throttling
and https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/service-protection-api-limits

The twin stands in for "pressure" with a request count over a sliding window across all callers: a caller
is throttled once that count reaches its priority's share of ``capacity`` (Low 50 %, Medium 75 %, High all).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from dualbus.sandbox.fo.errors import TooManyRequestsError

__all__ = ["Priority", "Throttle", "ThrottlingConfig"]


class Priority(StrEnum):
    """The throttling priorities an integration can be mapped to."""

    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"


_SHARE = {Priority.LOW: 0.5, Priority.MEDIUM: 0.75, Priority.HIGH: 1.0}


@dataclass(frozen=True, slots=True)
class ThrottlingConfig:
    """When throttling applies, how much traffic the twin takes, and each client's priority."""

    enabled: bool = False
    capacity: int = 6000
    window_seconds: float = 300.0
    priorities: Mapping[str, Priority] = field(default_factory=dict)
    default_priority: Priority = Priority.MEDIUM


class Throttle:
    """Counts requests over a sliding window and refuses those over the caller's priority share."""

    def __init__(self, config: ThrottlingConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self, client_id: str) -> None:
        """Record one request from ``client_id``, or raise TooManyRequestsError with the seconds to wait."""
        if not self.config.enabled:
            return
        priority = self.config.priorities.get(client_id, self.config.default_priority)
        threshold = max(1, int(self.config.capacity * _SHARE[priority]))
        with self._lock:
            now = self._clock()
            while self._times and self._times[0] <= now - self.config.window_seconds:
                self._times.popleft()
            if len(self._times) >= threshold:
                # Wait until enough old requests leave the window to bring the count under the threshold.
                oldest_needed = self._times[len(self._times) - threshold]
                wait = oldest_needed + self.config.window_seconds - now
                raise TooManyRequestsError(
                    f"Too many requests: {priority} priority integrations are throttled",
                    retry_after=max(1, math.ceil(wait)),
                )
            self._times.append(now)
