"""Service protection API limits, per user, as Dataverse enforces them on its Web API.

Three facets, each answered with 429 Too Many Requests, a ``Retry-After`` header in seconds and its own code:
the number of requests and the combined execution time within a 5-minute sliding window, and the number of
concurrent requests. A ``$batch`` is one request for the first facet (that is why batching "avoids the number
of requests limit") while its whole execution time counts for the second. What a user has left of the first
two is reported on every response by ``sandbox.dataverse.ratelimit_headers``.
See https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from dualbus.sandbox.dataverse.errors import DataverseApiError

__all__ = [
    "CONCURRENCY_CODE",
    "EXECUTION_TIME_CODE",
    "REQUEST_COUNT_CODE",
    "RemainingBudget",
    "ServiceProtection",
    "ServiceProtectionLimits",
]

# The Web API returns the hexadecimal form of the SDK's error codes -2147015902, -2147015903, -2147015898.
REQUEST_COUNT_CODE = "0x80072322"
EXECUTION_TIME_CODE = "0x80072321"
CONCURRENCY_CODE = "0x80072326"


@dataclass(frozen=True, slots=True)
class ServiceProtectionLimits:
    """The limits one user gets; the defaults are the documented per-web-server defaults."""

    max_requests: int = 6000
    max_execution_seconds: float = 1200.0
    max_concurrent: int = 52
    window_seconds: float = 300.0
    # What a concurrency refusal asks the client to wait; the page gives no figure, it clears at once.
    concurrency_retry_after_seconds: int = 1


@dataclass(frozen=True, slots=True)
class RemainingBudget:
    """What a user has left in the current window: requests, and execution time in seconds; never below 0."""

    requests: int
    execution_seconds: float


@dataclass(slots=True)
class _UserLoad:
    starts: deque[float] = field(default_factory=deque)
    executions: deque[tuple[float, float]] = field(default_factory=deque)
    execution_total: float = 0.0
    in_flight: int = 0


class ServiceProtection:
    """Admits or refuses each request of each user, and records how long the admitted ones ran."""

    def __init__(
        self, limits: ServiceProtectionLimits, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._users: dict[str, _UserLoad] = {}

    def admit(self, user_id: str) -> None:
        """Count a request in, or raise the 429 error the user has earned."""
        now = self._clock()
        load = self._users.setdefault(user_id, _UserLoad())
        self._trim(load, now)
        limits = self.limits
        if load.in_flight >= limits.max_concurrent:
            raise _throttled(
                CONCURRENCY_CODE,
                f"Number of concurrent requests exceeded the limit of {limits.max_concurrent}.",
                limits.concurrency_retry_after_seconds,
            )
        if len(load.starts) >= limits.max_requests:
            raise _throttled(
                REQUEST_COUNT_CODE,
                f"Number of requests exceeded the limit of {limits.max_requests} over time window of "
                f"{limits.window_seconds:g} seconds.",
                load.starts[0] + limits.window_seconds - now,
            )
        if load.execution_total >= limits.max_execution_seconds:
            raise _throttled(
                EXECUTION_TIME_CODE,
                f"Combined execution time of incoming requests exceeded limit of "
                f"{limits.max_execution_seconds * 1000:,.0f} milliseconds over time window of "
                f"{limits.window_seconds:g} seconds. Decrease number of concurrent requests or reduce the "
                "duration of requests and try again later.",
                self._execution_clears_in(load, now),
            )
        load.starts.append(now)
        load.in_flight += 1

    def remaining(self, user_id: str) -> RemainingBudget:
        """What ``user_id`` has left of the requests and execution time limits in the current window.

        Execution time can overshoot its limit (a request is only refused after the total passed it), so both
        figures stop at 0 rather than go negative.
        """
        load = self._users.setdefault(user_id, _UserLoad())
        self._trim(load, self._clock())
        return RemainingBudget(
            requests=max(0, self.limits.max_requests - len(load.starts)),
            execution_seconds=max(0.0, self.limits.max_execution_seconds - load.execution_total),
        )

    def release(self, user_id: str, execution_seconds: float) -> None:
        """An admitted request finished after ``execution_seconds``."""
        load = self._users[user_id]
        load.in_flight -= 1
        load.executions.append((self._clock(), execution_seconds))
        load.execution_total += execution_seconds

    def _trim(self, load: _UserLoad, now: float) -> None:
        horizon = now - self.limits.window_seconds
        while load.starts and load.starts[0] <= horizon:
            load.starts.popleft()
        while load.executions and load.executions[0][0] <= horizon:
            load.execution_total -= load.executions.popleft()[1]

    def _execution_clears_in(self, load: _UserLoad, now: float) -> float:
        """Seconds until enough old executions leave the window to bring the total under the limit."""
        remaining = load.execution_total
        for ended, seconds in load.executions:
            remaining -= seconds
            if remaining < self.limits.max_execution_seconds:
                return ended + self.limits.window_seconds - now
        return self.limits.window_seconds


def _throttled(code: str, message: str, retry_after: float) -> DataverseApiError:
    seconds = max(1, math.ceil(retry_after))
    return DataverseApiError(429, code, message, headers={"Retry-After": str(seconds)})
