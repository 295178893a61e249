"""One message, end to end: check, transform, apply (retrying in-process), then settle exactly once.

Nothing is written before the message passed every check (``shared.messages.checked_envelope`` and the
map checks of ``target_changes``); a check that fails dead-letters it at once with its own reason code.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Iterator
from dataclasses import replace
from typing import Protocol

from opentelemetry import propagate, trace

from dualbus.consumers._batched import BatchFailedError, BatchProgress, apply_batch
from dualbus.consumers._changes import target_changes
from dualbus.consumers._hold import current_hold
from dualbus.consumers._limit import AdaptiveLimit
from dualbus.consumers._metrics import ConsumerMetrics, traffic_of
from dualbus.consumers._retry import AwaitingLookup, MessageRetry
from dualbus.consumers._settlement import Action, Reason, Verdict, verdict
from dualbus.consumers._sink import ApplyResult, Sink
from dualbus.shared.bus import LockLostError
from dualbus.shared.bus_types import ReceivedMessage
from dualbus.shared.envelope import Envelope
from dualbus.shared.errors import BusError, DualbusError, RejectedError, ThrottledError, TransientError
from dualbus.shared.maps import MapSet
from dualbus.shared.message_batches import checked_batch, is_batch
from dualbus.shared.messages import DEFAULT_BUCKETS, checked_envelope, trace_context
from dualbus.shared.topology import Direction

__all__ = ["MessageProcessor", "Settler"]

_log = logging.getLogger("dualbus.consumer")
# Settlements that did not happen: counted as themselves, not as the changes of a batch.
_UNSETTLED = frozenset({"lock-lost", "settle-failed"})


class Settler(Protocol):
    """The settlement calls processing needs (``SessionHold``), failing with dualbus errors only."""

    async def complete_message(self, message: ReceivedMessage) -> None: ...

    async def abandon_message(self, message: ReceivedMessage) -> None: ...

    async def dead_letter_message(
        self,
        message: ReceivedMessage,
        reason: str | None = None,
        error_description: str | None = None,
    ) -> None: ...

    def lose(self, why: str) -> None:
        """The lock is gone: no further message of the batch is to be applied."""


class MessageProcessor:
    """Turns one received message into target writes and one settlement."""

    def __init__(
        self,
        *,
        area: str,
        direction: Direction,
        maps: MapSet,
        sink: Sink,
        limit: AdaptiveLimit,
        retry: MessageRetry,
        metrics: ConsumerMetrics,
        buckets: int = DEFAULT_BUCKETS,
    ) -> None:
        """``buckets`` is the topic's ``ordering_buckets``: a message's session id must be its record's."""
        self.area, self.direction, self.maps, self.sink = area, direction, maps, sink
        self.limit, self.retry, self.metrics, self.buckets = limit, retry, metrics, buckets

    async def process(self, message: ReceivedMessage, settler: Settler) -> str:
        """Handle and settle one message; returns the outcome counted for it."""
        if not self.metrics.tracing:
            # OpenTelemetry's invalid span takes the calls below and records nothing.
            return await self._processed(message, settler, trace.INVALID_SPAN)
        # Started, not made current: nothing in processing reads the current span, and making it current
        # (OpenTelemetry's nested context managers) cost about 5 % of the consumer's CPU, no-op tracer or not.
        span = self.metrics.tracer.start_span(
            f"dualbus.consume {self.area} {self.direction.value}",
            context=propagate.extract(trace_context(message)),
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.message.id": str(message.message_id)},
        )
        try:
            return await self._processed(message, settler, span)
        finally:
            span.end()

    async def _processed(self, message: ReceivedMessage, settler: Settler, span: trace.Span) -> str:
        try:
            outcome = await self._attempts(message, settler)
        except asyncio.CancelledError:
            # Shutdown ran out of time: give the message back before leaving.
            await asyncio.shield(self._settle(settler.abandon_message(message), "abandoned"))
            raise
        except Exception as exc:  # a bug: on the span as start_as_current_span would have put it, then up
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        span.set_attribute("dualbus.outcome", outcome)
        return outcome

    async def _attempts(self, message: ReceivedMessage, settler: Settler) -> str:
        started = time.monotonic()
        progress = BatchProgress()  # a batch message's changes finished by earlier attempts
        outcome: str | None = None
        try:
            try:
                # Most messages go through at their first try, which needs none of the retry policy's
                # set-up: that is made only after a failure, which it counts as the first attempt.
                outcome = await self._attempt(message, 1, started, progress)
            except _RetryableError as failure:
                outcome = await self._retried(message, failure, started, progress)
        except _AttemptFailedError as failure:
            # Not retried (a permanent failure, a lookup waited for long enough) or the budget is spent.
            return await self._give_up(message, settler, failure.verdict, failure.rejection)
        except LockLostError as exc:
            # The lock went while the message was handled (a save of the session's state said so): no
            # retry can settle it, and the batch's other messages stop too; all come back to the session's
            # next holder, in order.
            settler.lose(f"handling message {message.message_id}: {exc}")
            self.metrics.outcome("lock-lost")
            return "lock-lost"
        if outcome is None:
            raise AssertionError("the retry policy neither returned nor raised")  # pragma: no cover
        return await self._settle(settler.complete_message(message), outcome, progress=progress)

    async def _retried(
        self, message: ReceivedMessage, failure: _RetryableError, started: float, progress: BatchProgress
    ) -> str | None:
        """Retry after ``failure``: on the lookup schedule while the failures await a lookup, then (or from
        the start) on the message's policy; a failure not retried, or the last one, is raised."""
        tries = itertools.count(2)  # the attempts' numbers across both schedules, for the log
        if isinstance(failure, _AwaitingLookupError):
            lookups = self.retry.for_lookups()
            try:
                return await self._retried_under(lookups, message, failure, started, progress, tries=tries)
            except _RetryableError as other:
                if isinstance(other, _AwaitingLookupError):
                    raise  # the budget is spent
                # The row came, and the target fails otherwise: on with the waits meant for that.
                failure = other
        policy = self.retry
        if policy.attempts is not None:
            # The attempts limit the message, not each schedule: those made so far (the failed one in hand
            # is the next schedule's first) come off.
            made = next(tries) - 1
            tries = itertools.count(made + 1)
            policy = replace(policy, attempts=policy.attempts - made + 1)
        return await self._retried_under(policy, message, failure, started, progress, tries=tries)

    async def _retried_under(
        self,
        policy: MessageRetry,
        message: ReceivedMessage,
        failure: _RetryableError,
        started: float,
        progress: BatchProgress,
        *,
        tries: Iterator[int],
    ) -> str | None:
        outcome: str | None = None
        async for attempt in policy.retrying_after(failure, started=started):
            with attempt:  # a failure raised in here is retried, or raised past the loop when spent
                self.metrics.outcome("retried")  # every attempt yielded follows a failed one
                outcome = await self._attempt(message, next(tries), started, progress)
            if outcome is not None:
                return outcome
        return None

    async def _attempt(
        self, message: ReceivedMessage, number: int, started: float, progress: BatchProgress
    ) -> str:
        """One handling attempt; a failure is raised as _RetryableError while a retry may help."""
        hold = current_hold()
        if hold is not None:
            hold.still_held()  # a retry may come after a long wait: the session's lock may be over
        try:
            return await self._handle(message, progress)
        except LockLostError:
            raise  # the hold is gone (see _attempts): nothing to retry
        except Exception as exc:
            decided = verdict(exc)
            waited = decided.awaits_lookup and time.monotonic() - started >= self.retry.lookup_wait_seconds
            if decided.action is Action.DEAD_LETTER or waited:
                raise _AttemptFailedError(decided, _rejection(exc)) from exc
            _log.warning("message %s failed (try %d): %s", message.message_id, number, decided.description)
            if isinstance(exc, ThrottledError):
                await self.limit.throttled()
            retryable = _AwaitingLookupError if decided.awaits_lookup else _RetryableError
            raise retryable(decided, _rejection(exc)) from exc

    async def _handle(self, message: ReceivedMessage, progress: BatchProgress) -> str:
        if is_batch(message):
            envelopes = checked_batch(message, buckets=self.buckets)
            outcomes = await apply_batch(envelopes, self._apply, progress)
            # The message counts as its least complete change (a stale one among applied ones shows).
            return next((o for o in outcomes if o != ApplyResult.APPLIED.value), ApplyResult.APPLIED.value)
        return await self._apply(checked_envelope(message, buckets=self.buckets))

    async def _apply(self, envelope: Envelope) -> str:
        changes = target_changes(envelope, area=self.area, direction=self.direction, maps=self.maps)
        outcome = ApplyResult.UNCHANGED.value if not changes else ApplyResult.APPLIED.value
        for change in changes:
            async with self.limit.slot():
                started = time.perf_counter()
                result = await self.sink.apply(change)
            await self.limit.succeeded()
            if result is ApplyResult.APPLIED:
                self.metrics.applied(time.perf_counter() - started, envelope.time, traffic_of(envelope))
            # A message counts as its least complete change (a stale one among applied ones shows).
            if result is not ApplyResult.APPLIED:
                outcome = result.value
        return outcome

    async def _give_up(
        self, message: ReceivedMessage, settler: Settler, decided: Verdict, rejection: str | None
    ) -> str:
        if decided.action is Action.RETRY and not decided.dead_letter_when_spent:
            _log.warning("abandoning message %s after retries: %s", message.message_id, decided.description)
            return await self._settle(settler.abandon_message(message), "abandoned")
        reason = rejection or (decided.reason or Reason.UNEXPECTED_ERROR).value
        _log.error("dead-lettering message %s (%s): %s", message.message_id, reason, decided.description)
        dead = settler.dead_letter_message(message, reason=reason, error_description=decided.description)
        return await self._settle(dead, "dead-lettered", reason)

    async def _settle(
        self,
        call: Awaitable[None],
        outcome: str,
        reason: str | None = None,
        *,
        progress: BatchProgress | None = None,
    ) -> str:
        try:
            await call
        except LockLostError as exc:
            # The message comes back to this or another consumer; applying it again has no effect.
            _log.warning("lock lost before settling (%s): %s", outcome, exc)
            outcome, reason = "lock-lost", None
        except BusError as exc:
            _log.warning("settling failed (%s): %s", outcome, exc)
            outcome, reason = "settle-failed", None
        if progress is not None and progress.outcomes and outcome not in _UNSETTLED:
            for each in progress.outcomes.values():  # a batch counts each of its changes
                self.metrics.outcome(each)
        else:
            self.metrics.outcome(outcome, reason)
        return outcome


class _AttemptFailedError(DualbusError):
    """A failed attempt, settled by its verdict once it is not (or no longer) retried."""

    def __init__(self, decided: Verdict, rejection: str | None) -> None:
        super().__init__(decided.description)
        self.verdict = decided
        self.rejection = rejection


class _RetryableError(_AttemptFailedError, TransientError):
    """A failed attempt the message's retry policy retries (honouring the target's Retry-After)."""

    def __init__(self, decided: Verdict, rejection: str | None) -> None:
        super().__init__(decided, rejection)
        self.retry_after = decided.retry_after


class _AwaitingLookupError(_RetryableError, AwaitingLookup):
    """A failed attempt whose lookup names a row the target does not hold yet."""


def _rejection(exc: BaseException) -> str | None:
    """The reason code a failed check names for itself (verdict() knows only the codes of _settlement)."""
    if isinstance(exc, BatchFailedError):
        return exc.reason  # the first failed change's own code
    return exc.reason.value if isinstance(exc, RejectedError) else None
