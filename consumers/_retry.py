"""Waiting between attempts: exponential backoff with jitter that honours Retry-After, and a test switch.

``set_testing(True)`` turns every wait into (almost) nothing, the way stamina's ``set_testing`` does, so
retry tests run in milliseconds without faking the clock.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

__all__ = ["RetryPolicy", "RetryState", "is_testing", "set_testing", "testing_wait"]


class _Testing:
    active = False
    # Even in test mode a wait yields to the loop, so a retry storm cannot starve other tasks.
    wait = 0.0


def set_testing(active: bool, *, wait: float = 0.0) -> None:
    """Switch backoff waits off (``active``), or make each one ``wait`` seconds."""
    _Testing.active = active
    _Testing.wait = wait


def is_testing() -> bool:
    """Whether backoff waits are switched off."""
    return _Testing.active


def testing_wait() -> float | None:
    """The wait that stands in for every backoff in test mode; None outside it."""
    return _Testing.wait if _Testing.active else None


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How long to keep retrying one message in-process, and how long to wait between attempts."""

    # docs/processing.md: after the retry budget a transiently failing message is abandoned.
    budget_seconds: float = 600.0
    initial_wait: float = 0.5
    max_wait: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.25
    # How long a change whose lookup names a row the target does not hold waits for that row's own change
    # (docs/processing.md); within the budget. 0 dead-letters it at the first attempt.
    lookup_wait_seconds: float = 120.0

    def wait_for(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``; a server's Retry-After wins when it is given."""
        if _Testing.active:
            return _Testing.wait
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        base = min(self.initial_wait * self.multiplier ** max(attempt - 1, 0), self.max_wait)
        # Jitter spreads replicas that failed together, so they do not come back in lock-step.
        return base * (1.0 + random.uniform(-self.jitter, self.jitter))  # noqa: S311 - not for security

    def start(self) -> RetryState:
        """A fresh retry state for one message."""
        return RetryState(self)


class RetryState:
    """Attempts and elapsed time for one message under a policy."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.attempts = 0
        self._started = time.monotonic()

    @property
    def elapsed(self) -> float:
        """Seconds since the first attempt."""
        return time.monotonic() - self._started

    @property
    def spent(self) -> bool:
        """Whether the budget is used up; the next failure settles the message."""
        return time.monotonic() - self._started >= self.policy.budget_seconds

    async def pause(self, retry_after: float | None) -> None:
        """Count one failed attempt and wait before the next, never beyond the budget."""
        self.attempts += 1
        remaining = self.policy.budget_seconds - (time.monotonic() - self._started)
        delay = min(self.policy.wait_for(self.attempts, retry_after), max(remaining, 0.0))
        await asyncio.sleep(delay)
