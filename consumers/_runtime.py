"""The consumer runtime: up to ``concurrency`` sessions at once, each record in order, and a clean shutdown.

Each worker accepts the next available session of the area's subscription, keeps its lock renewed
(``AutoLockRenewer``), loads its tombstones (``_tombstones``) and works through each batch record by record:
the changes of one record in order, different records side by side (see ``_groups``). It lets the session go
when it runs dry, so every session gets its turn, and at once when the lock is lost (``_hold``): the rest of
the batch is left for the next holder. On stop, workers finish the messages in hand within the deadline,
abandon what they received but did not start, and close.

A worker whose session failed (Service Bus unavailable, a lock lost, a bug) waits before it takes the next
one: the shared retry policy's backoff (``RuntimeOptions.reconnect``), growing with the failures in a row
and starting over once a session is worked; stopping ends the wait at once. A look that waited all of
``session_wait`` in vain is no failure: the worker looks again at once, so that a quiet subscription's next
session is taken as soon as it comes.
Sessions: https://learn.microsoft.com/azure/service-bus-messaging/message-sessions
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from dualbus.consumers._groups import by_record
from dualbus.consumers._hold import SessionHold
from dualbus.consumers._process import MessageProcessor
from dualbus.consumers._tombstones import Tombstones
from dualbus.shared.bus import LockLostError
from dualbus.shared.bus_calls import LockRenewer, close, open_receiver, receive, renew_in_background
from dualbus.shared.bus_types import (
    AsyncBusClient,
    AsyncReceiver,
    ReceivedMessage,
    lock_renewer,
    subscription_receiver,
)
from dualbus.shared.errors import BusError, DualbusError, TransientError
from dualbus.shared.retry import RECONNECT_RETRY, Backoff, RetryPolicy
from dualbus.shared.stopping import until_either
from dualbus.shared.topology import SubscriptionSpec, TopicSpec

__all__ = ["Consumer", "LockRenewer", "RuntimeOptions"]

_log = logging.getLogger("dualbus.consumer")
# Seconds a receiver being opened when shutdown begins may take to finish connecting.
_OPEN_GRACE = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeOptions:
    """How a consumer receives: sessions at once, batch size, waits and the shutdown deadline."""

    concurrency: int = 4
    # Target writes in flight at once, over all sessions (Dataverse allows 52 concurrent requests per user).
    max_in_flight: int = 32
    # Records in flight when writes travel in Dataverse $batch requests: a few batches of a session's batch
    # size each, still well within the concurrent request limit (each $batch is one request).
    max_batched_in_flight: int = 400
    batch_size: int = 50
    # How long to wait for a free session, and for more messages before letting a session go.
    session_wait: float = 5.0
    idle_wait: float = 1.0
    shutdown_deadline: float = 20.0
    # Longer than the retry budget, so a long outage never costs the session lock.
    lock_renewal_seconds: float = 3600.0
    # How long a worker waits after a failed session before it takes the next (shared.retry).
    reconnect: RetryPolicy = RECONNECT_RETRY


class Gate(Protocol):
    """An operator's pause switch for one route (``shared.control.PauseWatcher``)."""

    @property
    def paused(self) -> bool:
        """Whether the route is paused now."""
        ...

    async def wait_resumed(self) -> None:
        """Return when the route runs."""
        ...


class Consumer:
    """Receives one area's subscription for one direction and feeds every message to the processor."""

    def __init__(
        self,
        client: AsyncBusClient,
        processor: MessageProcessor,
        *,
        topic: TopicSpec,
        subscription: SubscriptionSpec,
        options: RuntimeOptions | None = None,
        gate: Gate | None = None,
        ready: asyncio.Event | None = None,
        renewer: LockRenewer | None = None,
    ) -> None:
        """``ready``, when given, holds back every receive until it is set (the gate's first reading)."""
        self._renewer = renewer
        self._gate = gate
        self._ready = ready
        self._client = client
        self._processor = processor
        self._topic = topic
        self._subscription = subscription
        self.options = options or RuntimeOptions()
        self._closing: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish or abandon in-flight messages within the deadline."""
        renewer = self._renewer or lock_renewer(self.options.lock_renewal_seconds)
        workers = [
            asyncio.create_task(self._worker(stop, renewer), name=f"session-worker-{n}")
            for n in range(self.options.concurrency)
        ]
        try:
            await stop.wait()
            _, pending = await asyncio.wait(workers, timeout=self.options.shutdown_deadline)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.gather(*self._closing, return_exceptions=True)
            with contextlib.suppress(Exception):
                await renewer.close()

    async def _worker(self, stop: asyncio.Event, renewer: LockRenewer) -> None:
        backoff = Backoff(self.options.reconnect, stop)
        while not stop.is_set():
            if self._gate is not None and self._gate.paused:
                await until_either(stop, self._gate.wait_resumed())
                continue
            started = time.monotonic()
            try:
                await self._work_session(stop, renewer)
            except LockLostError as exc:
                _log.warning("session lost: %s", exc)
                await backoff.wait(exc)
            except TransientError as exc:
                if self._looked_in_vain(started):
                    # No session came within the whole wait: that look was the pause; look again at once.
                    backoff.reset()
                else:
                    # A passing fault, at once: the pause keeps a namespace refusing connections outright
                    # from being asked in a tight loop.
                    await backoff.wait(exc)
            except BusError as exc:
                _log.warning("Service Bus failed, reconnecting: %s", exc)
                await backoff.wait(exc)
            except Exception as exc:  # noqa: BLE001 - logged with its traceback; the worker must go on
                # A worker must outlive any one session's trouble, or the consumer silently stops.
                _log.exception("session worker failed; starting over")
                await backoff.wait(exc)
            else:
                backoff.reset()

    def _looked_in_vain(self, started: float) -> bool:
        """Whether a failed attempt waited all of ``session_wait`` (for a session that did not come)."""
        wait = self.options.session_wait
        return wait > 0 and time.monotonic() - started >= wait

    async def _work_session(self, stop: asyncio.Event, renewer: LockRenewer) -> None:
        """Take a session (or, without sessions, a receiver), work it until it runs dry, and let it go."""
        receiver = self._receiver()
        if not await _opened_unless_stopped(receiver, stop):
            return
        try:
            hold = await self._hold(receiver, renewer)
            if self._ready is not None and not self._ready.is_set():
                # Taking a session may overlap the gate's first reading; receiving may not.
                await until_either(stop, self._ready.wait())
            await self._drain(receiver, hold, stop, renewer)
        finally:
            self._close_later(receiver)

    def _close_later(self, receiver: AsyncReceiver) -> None:
        # Closing detaches the link first, which lets the session go; the SDK's close then waits for its
        # keep-alive task, which sleeps in whole seconds. The worker need not sit that out before it takes the
        # next session; run() waits for every close before it returns.
        task = asyncio.create_task(_close_quietly(receiver))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _hold(self, receiver: AsyncReceiver, renewer: LockRenewer) -> SessionHold:
        hold = SessionHold(receiver, sessionful=self._subscription.requires_session)
        if self._subscription.requires_session:
            _keep_session(receiver, renewer, hold)
            topic, subscription = self._topic, self._subscription
            ttl = min(topic.default_message_time_to_live, subscription.default_message_time_to_live)
            hold.tombstones = await Tombstones.load(receiver.session, ttl=ttl, turn=hold.state_turn)
        return hold

    def _receiver(self) -> AsyncReceiver:
        return subscription_receiver(
            self._client,
            self._topic.name,
            self._subscription.name,
            next_session=self._subscription.requires_session,
            max_wait_time=self.options.session_wait,
        )

    async def _drain(
        self, receiver: AsyncReceiver, hold: SessionHold, stop: asyncio.Event, renewer: LockRenewer
    ) -> None:
        while not stop.is_set() and not hold.lost:
            if self._gate is not None and self._gate.paused:
                return  # paused by an operator: let the session go; its messages wait in order
            options = self.options
            messages = await receive(receiver, max_count=options.batch_size, max_wait=options.idle_wait)
            if not messages or hold.lost:
                return  # dry: let the session go so that others get their turn; lost: leave them be
            if not self._subscription.requires_session:
                for message in messages:
                    renew_in_background(renewer, receiver, message, on_failure=hold.renewal_failed)
            await hold.work([self._work_through(group, hold, stop) for group in by_record(messages)])
            if len(messages) < self.options.batch_size:
                return  # a short batch means the session is (nearly) dry: make room for the others

    async def _work_through(
        self, group: list[ReceivedMessage], hold: SessionHold, stop: asyncio.Event
    ) -> None:
        """One record's messages, strictly one after another; on stop the unstarted ones go back."""
        for index, message in enumerate(group):
            if hold.lost or hold.expired(message):
                hold.lose("its time passed")
                return  # left in place: the session's next holder gets them, in order
            if stop.is_set():
                await _abandon_all(hold, group[index:])
                return
            await self._processor.process(message, hold)


def _keep_session(receiver: AsyncReceiver, renewer: LockRenewer, hold: SessionHold) -> None:
    """Have the session's lock renewed while the worker holds it; a failed renewal loses the hold."""
    session = receiver.session
    if session.locked_until_utc is None:
        # Without the lock time from the attach the SDK can neither renew nor trust this session: let it go
        # (closing the receiver releases it) and accept one afresh.
        raise TransientError(f"session {session.session_id!r} was accepted without a lock time")
    renew_in_background(renewer, receiver, session, on_failure=hold.renewal_failed)


async def _abandon_all(hold: SessionHold, messages: list[ReceivedMessage]) -> None:
    for message in messages:
        with contextlib.suppress(BusError):
            await hold.abandon_message(message)


async def _close_quietly(receiver: AsyncReceiver) -> None:
    try:
        await close(receiver)
    except DualbusError as exc:
        # The broker times the link out instead; a message left unsettled comes back when its lock expires.
        _log.warning("closing a receiver failed: %s", exc)


async def _opened_unless_stopped(receiver: AsyncReceiver, stop: asyncio.Event) -> bool:
    """Open the receiver (for a session, wait for one); give up soon if ``stop`` is set meanwhile.

    Waiting for a free session can take the SDK's whole retry budget (about 20 s when none comes); a worker
    holding no messages has nothing to finish, so shutdown must not wait for that.
    """
    opening = asyncio.ensure_future(open_receiver(receiver))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if opening.done():
        opening.result()  # an error while opening propagates to the worker's handlers
        return True
    # Cancelled while it still connects, the SDK leaves its socket open: give the connection a moment to
    # come up (or fail), so that closing the receiver closes it too.
    await asyncio.wait({opening}, timeout=_OPEN_GRACE)
    opening.cancel()
    with contextlib.suppress(BaseException):
        await opening
    with contextlib.suppress(Exception):
        await receiver.close()
    return False
