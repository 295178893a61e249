"""The one retry policy: exponential backoff with jitter, a server's Retry-After honoured up to a cap.

Every retry in dualbus goes through a ``RetryPolicy`` (consumers applying a message, producers reading and
publishing, the reconcile reading pages): it is stamina (https://stamina.hynek.me) configured with what to
retry on, always errors of dualbus's own tree (``TransientError`` and its ``ThrottledError``), never a
library's exception: libraries are translated into that tree at their boundary module first.

The wait before retry *n* is stamina's ``min(max_wait, initial_wait * 2 ** (n - 1) + uniform(0, jitter))``;
the jitter spreads replicas that failed together, so they do not come back in lock-step. A failure that
carries the server's word (``TransientError.retry_after``, from a ``Retry-After`` header) waits that long
instead, but never longer than ``RETRY_AFTER_CAP_SECONDS``: a target asking for minutes must not park a
message (or a page, or a batch) that long in-process; the retry budget and the consumer's circuit take
over from there.

Tests switch every wait off with stamina's own testing mode, ``stamina.set_testing(True, attempts=n)``.
This is the one module that imports stamina.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import stamina

from dualbus.shared.errors import DualbusError, TransientError

__all__ = ["RETRY_AFTER_CAP_SECONDS", "RetryPolicy", "honoured_retry_after", "waits_are_off"]

_T = TypeVar("_T")

# The longest a server's Retry-After is waited for before one retry; a longer one is clamped to this.
# Dataverse's service protection limits ask for seconds to a few minutes, F&O's priority-based throttling
# for seconds; 30 s keeps a worker responsive while honouring the usual answers in full.
RETRY_AFTER_CAP_SECONDS = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """What to retry on, how often or for how long, and how long to wait between attempts.

    ``attempts`` (None: no limit) and ``budget_seconds`` (None: no limit) end the retries, whichever comes
    first; then the last failure is raised. A budget of 0 or less means a single attempt.
    """

    on: tuple[type[DualbusError], ...] = (TransientError,)
    attempts: int | None = 8
    budget_seconds: float | None = None
    initial_wait: float = 0.5
    max_wait: float = 30.0
    jitter: float = 1.0

    def retrying(self) -> AsyncIterator[stamina.Attempt]:
        """stamina's attempts under this policy: ``async for attempt in ...: with attempt: ...``."""
        return stamina.retry_context(self.backoff, **self._stamina_options())

    async def call(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Await ``operation()``, retrying what the policy retries on; the last failure is raised."""
        async for attempt in self.retrying():
            with attempt:
                return await operation()
        raise AssertionError("stamina neither returned nor raised")  # pragma: no cover

    def call_blocking(self, operation: Callable[[], _T]) -> _T:
        """``call`` for a blocking ``operation`` (the waits block the thread)."""
        for attempt in stamina.retry_context(self.backoff, **self._stamina_options()):
            with attempt:
                return operation()
        raise AssertionError("stamina neither returned nor raised")  # pragma: no cover

    def _stamina_options(self) -> dict[str, Any]:
        single = self.budget_seconds is not None and self.budget_seconds <= 0
        return {
            "attempts": 1 if single else self.attempts,
            # stamina warns on a timeout of 0: a spent budget is one attempt, said with ``attempts``.
            "timeout": None if single else self.budget_seconds,
            "wait_initial": self.initial_wait,
            "wait_max": self.max_wait,
            "wait_jitter": self.jitter,
        }

    def backoff(self, exc: Exception) -> bool | float:
        """stamina's backoff hook: no retry (False), the exponential backoff (True), or seconds to wait."""
        if not isinstance(exc, self.on):
            return False
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return honoured_retry_after(exc.retry_after)
        return True


def waits_are_off() -> bool:
    """Whether stamina's testing mode is on; then the circuit's probe waits are zero as well."""
    return stamina.is_testing()


def honoured_retry_after(seconds: float) -> float:
    """How long a server's Retry-After is waited for: as given, within 0 and ``RETRY_AFTER_CAP_SECONDS``."""
    if math.isnan(seconds):
        return 0.0
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_SECONDS)
