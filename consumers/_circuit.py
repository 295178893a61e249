"""One circuit per target, shared by every worker of a consumer process: an outage is waited out together.

Without it each message backs off on its own, up to ``MessageRetry.max_wait``, and a backlog drains only as
those waits run out, long after the target is back. With it, once ``threshold`` transient failures come in a
row (no answer between them) the circuit opens: every apply waits on it, and one apply at a time goes
through as a probe, the first ``first_probe`` seconds after the circuit opened, then at growing intervals up
to ``max_probe`` (later when the target's Retry-After says so). The first answer closes it (any answer but a
transient failure: even a 4xx shows the target is back) and every waiting apply goes on at once.

A run of failures opens it, not one failure, so one record the target keeps failing with a 5xx does not hold
back the others: their successes between its failures keep the circuit closed, and it backs off on its own.
Throttling (429) and a row contended by concurrent writers never count: the target is answering, and the
adaptive limit and the message's own backoff handle those.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from dualbus.consumers._hold import current_hold
from dualbus.consumers._sink import ApplyResult, ContendedError, Sink, TargetChange
from dualbus.shared.bus import LockLostError
from dualbus.shared.errors import DualbusError, ThrottledError, TransientError
from dualbus.shared.retry import RETRY_AFTER_CAP_SECONDS, waits_are_off

__all__ = ["Circuit", "CircuitPolicy", "CircuitSink"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitPolicy:
    """When the circuit opens and how often it probes the target while open."""

    threshold: int = 3
    first_probe: float = 1.0
    # A few seconds at most, so that the first apply follows the target's return within about that time.
    max_probe: float = 3.0
    multiplier: float = 2.0
    # The longest Retry-After a probe waits for: the retry policy's cap.
    max_retry_after: float = RETRY_AFTER_CAP_SECONDS


class _Probe:
    """The one apply allowed through while the circuit is open."""


class Circuit:
    """Closed, or open and letting one probe through at a time; shared by the applies of one target."""

    def __init__(
        self, policy: CircuitPolicy | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or CircuitPolicy()
        self.is_open = False
        self._clock = clock
        self._failures = 0
        self._probe: _Probe | None = None
        self._interval = 0.0
        self._next_probe = 0.0
        self._changed = asyncio.Event()

    @property
    def probe_due_in(self) -> float:
        """Seconds until the next probe may go (0 when closed or due)."""
        return max(self._next_probe - self._clock(), 0.0) if self.is_open else 0.0

    async def admit(self, max_wait: float) -> _Probe | None:
        """None at once while closed; while open, wait until it closes (None) or the caller is to probe.

        Raises TransientError after ``max_wait`` seconds of waiting, so that the caller's retry budget holds.
        """
        deadline = self._clock() + max_wait
        while self.is_open:
            now = self._clock()
            if self._probe is None and now >= self._next_probe:
                self._probe = _Probe()
                return self._probe
            if now >= deadline:
                raise TransientError(f"the target was unavailable for over {max_wait:g} s (circuit open)")
            until = deadline if self._probe is not None else min(deadline, self._next_probe)
            await self._changes(until - now)
        return None

    def failed(self, probe: _Probe | None, retry_after: float | None) -> bool:
        """Count a transient failure of the target; whether the circuit is open afterwards."""
        self._failures += 1
        if self.is_open and probe is not None and probe is self._probe:
            self._interval = min(self._interval * self.policy.multiplier, self.policy.max_probe)
            self._schedule(retry_after)
        elif not self.is_open and self._failures >= self.policy.threshold:
            self.is_open = True
            self._interval = self.policy.first_probe
            self._schedule(retry_after)
        elif self.is_open and retry_after:
            # A failure that was in flight when the circuit opened may still carry the target's word.
            self._next_probe = max(self._next_probe, self._clock() + self._honoured(retry_after))
        return self.is_open

    def answered(self, probe: _Probe | None) -> None:
        """The target answered: close the circuit, and every waiting apply goes on."""
        self._failures = 0
        if self.is_open or probe is not None:
            self.is_open = False
            self._probe = None
            self._notify()

    def left(self, probe: _Probe | None) -> None:
        """An apply ended without a word on the target (cancelled, or a bug): its probe turn passes on."""
        if probe is not None and probe is self._probe:
            self._probe = None
            self._notify()

    def _schedule(self, retry_after: float | None) -> None:
        self._probe = None
        # stamina's testing mode switches every backoff off, the circuit's probe intervals with them.
        wait = 0.0 if waits_are_off() else max(self._interval, self._honoured(retry_after or 0.0))
        self._next_probe = self._clock() + wait
        self._notify()

    def _honoured(self, retry_after: float) -> float:
        return min(max(retry_after, 0.0), self.policy.max_retry_after)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _changes(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), max(seconds, 0.0))


class CircuitSink:
    """A sink whose applies wait on the target's circuit while it is open."""

    def __init__(self, sink: Sink, circuit: Circuit, *, max_wait: float) -> None:
        """``max_wait`` bounds one wait on an open circuit: the retry budget of the message waiting."""
        self._sink = sink
        self.circuit = circuit
        self._max_wait = max_wait

    async def apply(self, change: TargetChange) -> ApplyResult:
        """Apply through the wrapped sink once the circuit lets the change through."""
        probe = await self.circuit.admit(self._max_wait)
        hold = current_hold()
        if hold is not None:
            try:
                hold.still_held()  # the wait for the circuit may outlast the session's lock
            except LockLostError:
                self.circuit.left(probe)
                raise
        try:
            result = await self._sink.apply(_hook_apart(change))
        except _HookFailedError as carried:
            # The change's own hook failed (a save of the session's state in Service Bus), not the target:
            # it neither counts as a failure of the target nor as its answer.
            self.circuit.left(probe)
            raise carried.failure from carried.failure.__cause__
        except (ThrottledError, ContendedError):
            self.circuit.answered(probe)
            raise
        except TransientError as exc:
            if not self.circuit.failed(probe, exc.retry_after):
                raise
            # The retry waits on the circuit, which honours Retry-After: no backoff of its own on top.
            raise TransientError(f"{exc} (waiting for the target)", retry_after=0.0) from exc
        except DualbusError:
            self.circuit.answered(probe)  # a refusal, a lookup it lacks: the target answered
            raise
        except BaseException:
            self.circuit.left(probe)
            raise
        self.circuit.answered(probe)
        return result

    async def aclose(self) -> None:
        """Close the wrapped sink."""
        await self._sink.aclose()


class _HookFailedError(Exception):
    """Carries a failure of a change's ``before_update`` hook through the target's sink to CircuitSink."""

    def __init__(self, failure: Exception) -> None:
        super().__init__(str(failure))
        self.failure = failure


def _hook_apart(change: TargetChange) -> TargetChange:
    """The change with its ``before_update`` hook's failures told apart from the target's."""
    hook = change.before_update
    if hook is None:
        return change

    async def told_apart() -> None:
        try:
            await hook()
        except Exception as exc:  # carried to CircuitSink, which raises it as it was
            raise _HookFailedError(exc) from exc

    return replace(change, before_update=told_apart)
