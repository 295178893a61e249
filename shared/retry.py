"""The one retry policy: exponential backoff with jitter, a server's Retry-After honoured up to a cap.

Every retry in dualbus goes through a ``RetryPolicy``: it is stamina (https://stamina.hynek.me) configured
with what to retry on, errors of dualbus's own tree (``TransientError`` and its ``ThrottledError``), never a
library's exception: libraries are translated into that tree at their boundary module first. (A loop that
must outlive anything, a consumer's session worker, names ``Exception`` and logs what it caught first.)

Two shapes of retrying share it:

- An operation that must succeed (``call``, ``call_blocking``, ``retrying``: a consumer applying a message,
  producers reading and publishing, the reconcile reading pages) is retried until it does, or until
  ``attempts`` or ``budget_seconds`` are spent; then the last failure is raised. The budget is kept: a wait
  that would end past it is cut to end there, so the last attempt starts at the budget's end at the latest.
  (stamina's ``timeout`` only stops retrying once it has passed, after a whole wait that may cross it.)
- A loop that runs until stopped and goes on after a failure (a session worker or a drain reconnecting, a
  producer's failed poll round) waits through a ``Backoff``: the waits grow with the failures in a row,
  start over once the loop succeeds, and end at once when the loop is stopped. It never gives up.

The wait before retry *n* is stamina's ``min(max_wait, initial_wait * 2 ** (n - 1) + uniform(0, jitter))``;
the jitter spreads replicas that failed together, so they do not come back in lock-step. A failure that
carries the server's word (``TransientError.retry_after``, from a ``Retry-After`` header) waits that long
instead, but never longer than ``RETRY_AFTER_CAP_SECONDS``: a target asking for minutes must not park a
message (or a page, or a batch) that long in-process; the retry budget and the consumer's circuit take
over from there.

Each retry stamina schedules is logged at DEBUG on the ``dualbus.retry`` logger, set once here for the
process: stamina's default logs every one as a WARNING, and a consumer waiting out a throttled target would
flood the log with them. The WARNING a failure deserves is written by the caller that knows what failed (a
message's try, a poll round, a reconnect).

Tests switch every wait off with stamina's own testing mode, ``stamina.set_testing(True, attempts=n)``.
This is the one module that imports stamina.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import stamina
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from dualbus.shared.errors import TransientError

__all__ = [
    "RECONNECT_RETRY",
    "RETRY_AFTER_CAP_SECONDS",
    "Backoff",
    "RetryPolicy",
    "honoured_retry_after",
    "waits_are_off",
]

_T = TypeVar("_T")
_log = logging.getLogger("dualbus.retry")

# The longest a server's Retry-After is waited for before one retry; a longer one is clamped to this.
# Dataverse's service protection limits ask for seconds to a few minutes, F&O's priority-based throttling
# for seconds; 30 s keeps a worker responsive while honouring the usual answers in full.
RETRY_AFTER_CAP_SECONDS = 30.0


def _log_retry(details: RetryDetails) -> None:
    """stamina's on-retry hook (``stamina.instrumentation.RetryHook``): one DEBUG line per scheduled retry."""
    failure = details.caused_by
    _log.debug(
        "retry %d in %.2f s after %s: %s",
        details.retry_num,
        details.wait_for,
        type(failure).__name__,
        failure,
        extra={"retry": details.retry_num, "wait_seconds": round(details.wait_for, 3)},
    )


# stamina's hooks are global: set once, when the policy is first imported, before any retry runs.
set_on_retry_hooks([_log_retry])


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """What to retry on, how often or for how long, and how long to wait between attempts.

    ``attempts`` (None: no limit) and ``budget_seconds`` (None: no limit) end the retries, whichever comes
    first; then the last failure is raised. A budget of 0 or less means a single attempt.
    """

    on: tuple[type[Exception], ...] = (TransientError,)
    attempts: int | None = 8
    budget_seconds: float | None = None
    initial_wait: float = 0.5
    max_wait: float = 30.0
    jitter: float = 1.0

    def retrying(self) -> AsyncIterator[stamina.Attempt]:
        """stamina's attempts under this policy: ``async for attempt in ...: with attempt: ...``."""
        return _Attempts(self)

    def retrying_after(self, failure: Exception, *, started: float) -> AsyncIterator[stamina.Attempt]:
        """The attempts that follow a first one made outside them, begun at ``started`` (``time.monotonic``)
        and failed with ``failure``: stamina counts that one as its first attempt, so the first yielded is
        number 2 (or ``failure`` is raised at once when the policy does not retry it), and the budget runs
        from ``started``. Most operations succeed at once; trying first and setting up stamina's retry
        context only after a failure spares them its cost, with the same attempts, waits and budget."""
        return _Attempts(self, failed=failure, started=started)

    async def call(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Await ``operation()``, retrying what the policy retries on; the last failure is raised."""
        started = time.monotonic()
        try:
            return await operation()
        except Exception as exc:  # noqa: BLE001 - handed to the policy, which raises what it does not retry
            failure = exc
        async for attempt in self.retrying_after(failure, started=started):
            with attempt:
                return await operation()
        raise AssertionError("stamina neither returned nor raised")  # pragma: no cover

    def call_blocking(self, operation: Callable[[], _T]) -> _T:
        """``call`` for a blocking ``operation`` (the waits block the thread)."""
        started = time.monotonic()
        try:
            return operation()
        except Exception as exc:  # noqa: BLE001 - handed to the policy, which raises what it does not retry
            failure = exc
        for attempt in _Attempts(self, failed=failure, started=started):
            with attempt:
                return operation()
        raise AssertionError("stamina neither returned nor raised")  # pragma: no cover

    def stamina_options(self) -> dict[str, Any]:
        """The policy as ``stamina.retry_context``'s keyword arguments."""
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


# How a loop whose receiver failed (Service Bus unavailable, a lock lost, a bug) waits before it opens
# another: 0.2 s doubling to 5 s, with up to 0.5 s of jitter so that the workers and replicas that failed
# together spread out; short enough that a namespace back is used within seconds. It retries anything: such
# a loop logs what failed and must go on.
RECONNECT_RETRY = RetryPolicy(on=(Exception,), attempts=None, initial_wait=0.2, max_wait=5.0, jitter=0.5)


class _Attempts:
    """stamina's attempts at one operation under a policy, with no wait ending past the policy's budget.

    With ``failed``, the first attempt was made outside, from ``started`` on: it is handed to stamina as its
    own first attempt before the first one is yielded, and the budget (stamina's ``timeout`` and the
    deadline) counts from ``started``.
    """

    def __init__(
        self, policy: RetryPolicy, *, failed: Exception | None = None, started: float | None = None
    ) -> None:
        self._policy = policy
        self._failed = failed
        self._started = started
        self._iterator: AsyncIterator[stamina.Attempt] | None = None
        self._deadline: float | None = None
        # stamina's wait after the current attempt, without its jitter.
        self._next_wait = 0.0

    def _stamina(self) -> Any:  # noqa: ANN401 - stamina's retry context, iterable either way
        """The policy's retry context, its timeout shortened by the time the first attempt took outside."""
        options = self._policy.stamina_options()
        timeout = options["timeout"]
        if self._failed is not None and self._started is not None and timeout is not None:
            # stamina's clock starts now: what is left of the budget. A spent one stops at once after the
            # handed-over attempt (a tiny timeout rather than 0, on which stamina warns).
            options["timeout"] = max(timeout - (time.monotonic() - self._started), 1e-9)
        return stamina.retry_context(self._backoff, **options)

    def __aiter__(self) -> _Attempts:
        self._iterator = aiter(self._stamina())
        return self

    async def __anext__(self) -> stamina.Attempt:
        assert self._iterator is not None, "iterated without aiter()"  # noqa: S101 - a programming error
        if self._failed is not None:
            failed, self._failed = self._failed, None
            _hand_over(self._next(await anext(self._iterator)), failed)
        return self._next(await anext(self._iterator))

    def __iter__(self) -> Iterator[stamina.Attempt]:
        context = self._stamina()
        failed, self._failed = self._failed, None
        for attempt in context:
            if failed is not None:
                _hand_over(self._next(attempt), failed)
                failed = None
                continue
            yield self._next(attempt)

    def _next(self, attempt: stamina.Attempt) -> stamina.Attempt:
        budget = self._policy.budget_seconds
        if self._deadline is None and budget is not None:
            # Counted from the first attempt, just after stamina started the clock of its ``timeout``: the
            # deadline is never before that timeout's end, so the last (cut) wait leads to a last attempt.
            first = self._started if self._started is not None else time.monotonic()
            self._deadline = first + budget
        self._next_wait = attempt.next_wait
        return attempt

    def _backoff(self, exc: Exception) -> bool | float:
        wait = self._policy.backoff(exc)
        if wait is False or self._deadline is None:
            return wait
        left = self._deadline - time.monotonic()
        if left <= 0.0:
            # The budget is spent: the attempt after the cut wait was the last. stamina's own clock started
            # a little after the deadline's, so its timeout may not have run out yet; a wait of 0 here
            # would retry at once until it does.
            return False
        if wait is True:
            # The longest stamina may draw: the exponential step plus all of the jitter, within max_wait.
            longest = min(self._next_wait + self._policy.jitter, self._policy.max_wait)
            return True if longest <= left else left
        return min(wait, left)


class Backoff:
    """The waits of a loop that runs until stopped and goes on after each failure, under a policy.

    Each failure in a row waits the policy's next backoff (or the server's Retry-After, within the cap);
    ``reset`` after a success makes the next failure wait the first one again. ``stop`` ends a wait at once.
    The loop never gives up: the policy's ``attempts`` and ``budget_seconds`` do not apply.
    """

    def __init__(self, policy: RetryPolicy, stop: asyncio.Event) -> None:
        self._policy = replace(policy, attempts=None, budget_seconds=None)
        self._stop = stop
        self._attempts: AsyncIterator[stamina.Attempt] | None = None
        self._attempt: stamina.Attempt | None = None

    def reset(self) -> None:
        """The loop went well: the next failure waits the policy's first backoff."""
        self._attempts = None
        self._attempt = None

    async def wait(self, failure: Exception) -> None:
        """Wait as the policy says after ``failure``, or until ``stop`` is set; raise a failure it does not
        retry on."""
        if not isinstance(failure, self._policy.on):
            raise failure
        if self._attempts is None or self._attempt is None:
            self._attempts = aiter(self._policy.retrying())
            self._attempt = await anext(self._attempts)  # the first attempt, with no wait before it
        _hand_over(self._attempt, failure)
        self._attempt = await self._next_attempt(self._attempts)

    async def _next_attempt(self, attempts: AsyncIterator[stamina.Attempt]) -> stamina.Attempt | None:
        """stamina's next attempt once its wait is over; None, and a fresh start next time, when stopped."""
        waiting = asyncio.ensure_future(anext(attempts))
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not waiting.done():
                waiting.cancel()
                await asyncio.wait({waiting})
        if not waiting.cancelled() and waiting.exception() is None:
            return waiting.result()
        # Stopped during the wait; or stamina gave up, which only its testing mode makes it do here (it caps
        # the attempts): either way the next failure starts from the first wait.
        self.reset()
        return None


def _hand_over(attempt: stamina.Attempt, failure: Exception) -> None:
    """Fail ``attempt`` with ``failure``, which happened outside its block: stamina then decides the wait."""
    with attempt:  # stamina's attempt keeps what is raised in it, and raises nothing
        raise failure


def waits_are_off() -> bool:
    """Whether stamina's testing mode is on; then the circuit's probe waits are zero as well."""
    return stamina.is_testing()


def honoured_retry_after(seconds: float) -> float:
    """How long a server's Retry-After is waited for: as given, within 0 and ``RETRY_AFTER_CAP_SECONDS``."""
    if math.isnan(seconds):
        return 0.0
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_SECONDS)
