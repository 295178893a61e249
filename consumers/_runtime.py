"""The consumer runtime: up to ``concurrency`` sessions at once, each record in order, and a clean shutdown.

By default ``concurrency`` is the topic's ordering buckets: every busy session is held, none waits its turn.
Takers accept the next available sessions of the area's subscription ahead of the workers (``_supply``),
keep their locks renewed (``AutoLockRenewer``) and load their tombstones (``_tombstones``). Each worker
works a taken session's batches record by record: the changes of one record in order, different records
side by side, and the next batch received while one is worked (``_record_queues``). It lets the session
go when it runs dry, or after a short batch when another session waits, taken, so every session gets its
turn; and at once when the lock is lost (``_hold``): the messages in hand are left for the next holder.
On stop, workers finish the messages in hand within the deadline, abandon what they received but did not
start, and close; the sessions taken ahead are let go.

A worker whose session failed (a lock lost, a bug), or a taker whose look failed (Service Bus unavailable),
waits before it goes on: the shared retry policy's backoff (``RuntimeOptions.reconnect``), growing with the
failures in a row and starting over after a success; stopping ends the wait at once. A look that waited all
of ``session_wait`` in vain is no failure: the taker looks again at once, so that a quiet subscription's
next session is taken as soon as it comes.
Sessions: https://learn.microsoft.com/azure/service-bus-messaging/message-sessions
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from dualbus.consumers._hold import SessionHold
from dualbus.consumers._process import MessageProcessor
from dualbus.consumers._record_queues import RecordQueues
from dualbus.consumers._supply import Supply
from dualbus.consumers._tombstones import Tombstones
from dualbus.shared.bus import LockLostError
from dualbus.shared.bus_calls import (
    LockRenewer,
    abandon_open,
    close,
    open_once,
    receive,
    renew_in_background,
)
from dualbus.shared.bus_types import (
    AsyncBusClient,
    AsyncReceiver,
    ReceivedMessage,
    lock_renewer,
    subscription_receiver,
)
from dualbus.shared.errors import BusError, ConfigError, DualbusError, TransientError
from dualbus.shared.retry import RECONNECT_RETRY, Backoff, RetryPolicy
from dualbus.shared.stopping import done_unless_stopped, until_either
from dualbus.shared.topology import SubscriptionSpec, TopicSpec

__all__ = ["Consumer", "LockRenewer", "RuntimeOptions"]

# How long a session taken before the route's pause state was read waits for it before it is let go.
_READY_GRACE_SECONDS = 5.0

_log = logging.getLogger("dualbus.consumer")
# Seconds a receiver being opened when shutdown begins may take to finish connecting.
_OPEN_GRACE = 2.0
# A receive's wait that takes only the messages its receiver holds already (prefetched): over before the SDK
# would read its connection. The SDK refuses a wait of 0, and measures what is left of a wait from the start
# of the receive: with 1e-6 s, 0.5-7 % of such receives still read the connection (and, without prefetch,
# most asked the broker for messages); with 1e-9, none of 2,000 did.
_HELD_ONLY = 1e-9
# How far the sum of a session's looks may fall short of a wait and still count as it (float rounding).
_ROUNDING = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeOptions:
    """How a consumer receives: sessions at once, batch size, waits and the shutdown deadline."""

    # Sessions worked at once; None: one per ordering bucket of the area's topic, so that every busy session
    # is held and none waits for its turn. Each costs one receiver (one AMQP connection) and a little CPU
    # while it waits (docs/operations.md, "Consumer leg").
    concurrency: int | None = None
    # Records in flight at once, over all sessions. Their requests travel in $batch requests (to Dataverse
    # and F&O alike): a few batches of a session's batch size each, well within Dataverse's 52 concurrent
    # requests per user (each $batch is one request).
    max_batched_in_flight: int = 400
    batch_size: int = 50
    # How long one look waits for a free session. A look that ends in vain is followed by the next at once,
    # on a new connection (half a second of handshake, and CPU in the consumer and the broker), so a long
    # look costs an idle consumer less: one worker per bucket waiting in 5 s looks took 4.6 % of a core and
    # the emulator 0.8 %; in 30 s looks, 3.6 % and 0.1 % (both in 50 ms reads, before
    # ``look_read_timeout``). Stopping and pausing do not wait for a look.
    session_wait: float = 30.0
    # Looks for a free session under way at once (None: one per worker). A burst over idle sessions is taken
    # this many at a time, half a second apart (each look that found one is followed by a new connection):
    # with 8, at 200 changes/s after a quiet spell, the last of a topic's 32 sessions came 1.5 s late; with
    # 16, changes towards Dataverse took over 0.5 s for 8 s after it, with one per bucket for 1 s. Each
    # waiting look is a connection the SDK reads: in 1 s reads (``look_read_timeout``) an idle consumer took
    # 1.0 % of a core with a look per bucket, 0.6 % with 16 (in 50 ms reads, 3 % and 1.7 %).
    looks: int | None = None
    # How long a kept session may stay dry before it is let go. Taking it again costs the SDK half a second
    # before its first message: a new connection, and one 50 ms turn of its opening loop for each of the
    # nine frames the broker answers with (open, begin, the token's links, its answer, the link). At 200
    # changes/s most sessions let go after 1 s dry got a message within the next second; kept 5 s, p99
    # towards Dataverse went from 1.24-1.67 s (four runs) to 0.97 s, at no more CPU (a kept session's looks
    # cost less than taking it again).
    idle_wait: float = 5.0
    # How long one look at a kept session waits for its next message while no other session waits (see
    # ``_drain`` and ``_look``). A look asks for one message, which the SDK hands over as it comes; the
    # longer the look, the fewer the SDK's calls: 32 kept sessions, dry, took 9 % of a core in looks of
    # 0.05 s, 4-5 % in looks of 0.25 s (half of that is the read timeout's wake-ups, whatever the look).
    dry_look: float = 0.25
    # How long one look waits while another session waits for a worker, so that a dry session is let go
    # for it soon, and beside messages in hand (``_received_beside``).
    kept_look: float = 0.05
    # How long a session just taken is looked at before it is let go for another that waits. It was given
    # because it holds messages, but on a busy broker the first of them can take more than one look to
    # come; let go after one empty look (as a dry kept session is), it had cost a take for nothing, the
    # next holder paid another (half a second each, see ``idle_wait``), and the read of its tombstones,
    # cut off, made the SDK log an ERROR ("Management Operation error occurred"). In initial syncs of
    # 20,000 customers with 16 sessions at once this happened 2 to 5 times a run.
    first_look: float = 0.5
    # How long one read on a session receiver's connection waits for a frame before the receive looks at
    # its own deadline again. The SDK's default (0.2 s) rounds every receive up to a multiple of it, so a
    # 0.1 s look lasted 0.2 s, and so did the wait after a session's last message: each session turn paid
    # it twice. A read cut short keeps what it had (the SDK buffers a partial frame), so shorter is safe;
    # it only wakes a receiver more often while it waits (an idle consumer's CPU did not change measurably).
    # The SDK's ``socket_timeout`` keyword, given to each receiver (the client's own does not reach them):
    # https://learn.microsoft.com/python/api/azure-servicebus/azure.servicebus.servicebusclient
    read_timeout: float = 0.05
    # How long one read on a look's connection waits while the look waits for a free session (any frame
    # ends it at once: the session's attach is not later for it). With ``read_timeout`` there, every waiting
    # look cost its consumer ten turns of the SDK's opening loop a second (``shared.bus_calls.open_once``).
    look_read_timeout: float = 1.0
    shutdown_deadline: float = 20.0
    # After the deadline, how long closing what is left (the session receivers, the lock renewer) may take
    # before the consumer returns without waiting more: a broker that stopped answering must not hold the
    # process past any grace its orchestrator gives (Kubernetes' terminationGracePeriodSeconds, 30 s by
    # default). A session left so comes back to the next holder once its connection drops or its lock ends.
    close_grace: float = 5.0
    # Longer than the retry budget, so a long outage never costs the session lock.
    lock_renewal_seconds: float = 3600.0
    # How long a worker waits after a failed session before it takes the next (shared.retry).
    reconnect: RetryPolicy = RECONNECT_RETRY

    def __post_init__(self) -> None:
        # A wait of zero would spin: a look that asks for none returns at once and counts no dry time.
        waits = {
            "close_grace": self.close_grace,
            "dry_look": self.dry_look,
            "kept_look": self.kept_look,
            "read_timeout": self.read_timeout,
            "look_read_timeout": self.look_read_timeout,
        }
        for name, wait in waits.items():
            if not wait > 0:
                raise ConfigError(f"the consumer's {name} must be more than 0 seconds, not {wait}")
        counts = {"concurrency": self.concurrency, "looks": self.looks, "batch_size": self.batch_size}
        for name, count in counts.items():
            if count is not None and count < 1:
                raise ConfigError(f"the consumer's {name} must be at least 1, not {count}")


@dataclass(frozen=True, slots=True)
class _Taken:
    """A session's open receiver and the hold on it."""

    receiver: AsyncReceiver
    hold: SessionHold


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
        concurrency = self.options.concurrency
        if concurrency is None:
            concurrency = self._topic.ordering_buckets
        sessions = self._topic.ordering_buckets if self._subscription.requires_session else None
        supply: Supply[_Taken] = Supply(
            ahead=concurrency, release=self._release, most=sessions, looks=self.options.looks
        )
        takers = [
            asyncio.create_task(self._taker(stop, renewer, supply), name=f"session-taker-{n}")
            for n in range(concurrency)
        ]
        workers = [
            asyncio.create_task(self._worker(stop, renewer, supply), name=f"session-worker-{n}")
            for n in range(concurrency)
        ]
        tasks = [*workers, *takers]
        try:
            await stop.wait()
            # Takers end soon after the stop (a receiver being opened gets a grace to finish connecting);
            # one still taking a session at the deadline (its state read unanswered) is cancelled as a
            # worker is: closing the client drops its connection, and the session with it.
            await asyncio.wait(tasks, timeout=self.options.shutdown_deadline)
        finally:
            # What is still running at the deadline is cancelled; waiting for it to end, and for every
            # receiver to close, gets ``close_grace`` more at most.
            for task in tasks:
                task.cancel()
            closing = asyncio.ensure_future(self._close_all(tasks, supply, renewer))
            done, _ = await asyncio.wait({closing}, timeout=self.options.close_grace)
            if done:
                closing.result()
            else:
                closing.cancel()
                _log.warning(
                    "closing the consumer's receivers took more than %g s: left unfinished",
                    self.options.close_grace,
                )

    async def _close_all(
        self, tasks: list[asyncio.Task[None]], supply: Supply[_Taken], renewer: LockRenewer
    ) -> None:
        """Wait for the cancelled tasks, let the sessions taken ahead go, and close every receiver and the
        lock renewer."""
        await asyncio.gather(*tasks, return_exceptions=True)
        await supply.release_all()
        await asyncio.gather(*self._closing, return_exceptions=True)
        with contextlib.suppress(Exception):
            await renewer.close()

    async def _taker(self, stop: asyncio.Event, renewer: LockRenewer, supply: Supply[_Taken]) -> None:
        """Take sessions ahead of the workers (``_supply``), while the route runs."""
        backoff = Backoff(self.options.reconnect, stop)
        first = True
        while not stop.is_set():
            if self._gate is not None and self._gate.paused:
                await until_either(stop, self._gate.wait_resumed())
                continue
            if not first and self._ready is not None and not self._ready.is_set():
                # One take may overlap the pause state's first reading; more would hold sessions that
                # healthy replicas could work while the control queue does not answer this one.
                await until_either(stop, self._ready.wait())
                continue
            first = False
            await _surviving(backoff, supply.take_with(lambda: self._take(stop, renewer), stop))

    async def _worker(self, stop: asyncio.Event, renewer: LockRenewer, supply: Supply[_Taken]) -> None:
        """Work the sessions taken, one at a time, while the route runs."""
        backoff = Backoff(self.options.reconnect, stop)
        while not stop.is_set():
            if self._gate is not None and self._gate.paused:
                await supply.release_all()  # paused by an operator: their messages wait in order
                await until_either(stop, self._gate.wait_resumed())
                continue
            taken = await supply.next(stop)
            if taken is not None:
                await _surviving(backoff, self._work(taken, stop, renewer, supply))

    def _looked_in_vain(self, started: float) -> bool:
        """Whether a failed attempt waited all of ``session_wait`` (for a session that did not come)."""
        wait = self.options.session_wait
        return wait > 0 and time.monotonic() - started >= wait

    async def _take(self, stop: asyncio.Event, renewer: LockRenewer) -> _Taken | None:
        """Take a session (or, without sessions, a receiver) and hold it.

        None when stopped meanwhile, or when no session came within the whole ``session_wait``: that look
        was the pause, and is no failure; the taker looks again at once.
        """
        started = time.monotonic()
        receiver = self._receiver()
        try:
            if not await _opened_unless_stopped(receiver, stop, self.options.look_read_timeout):
                return None
        except TransientError:
            if self._looked_in_vain(started):
                return None
            raise
        try:
            return _Taken(receiver, self._hold(receiver, renewer))
        except BaseException:
            self._close_later(receiver)
            raise

    async def _work(
        self, taken: _Taken, stop: asyncio.Event, renewer: LockRenewer, supply: Supply[_Taken]
    ) -> None:
        """Work a taken session until it runs dry (see ``_drain``), then let it go (and its slot in the
        supply, before any backoff after a failure: no other worker holds the session meanwhile)."""
        try:
            if self._gate is not None and self._gate.paused:
                return
            if self._ready is not None and not self._ready.is_set():
                # Taking a session may overlap the gate's first reading; receiving may not. A reading that
                # does not come soon (the control queue not answering) must not keep the session from the
                # route's other replicas: it is let go, and taken again once the state is known.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(until_either(stop, self._ready.wait()), _READY_GRACE_SECONDS)
                if not self._ready.is_set():
                    return
            await self._drain(taken, stop, renewer, supply)
        finally:
            taken.hold.let_go()
            self._close_later(taken.receiver)
            supply.finished()

    async def _release(self, taken: _Taken) -> None:
        taken.hold.let_go()
        self._close_later(taken.receiver)

    def _close_later(self, receiver: AsyncReceiver) -> None:
        # Closing detaches the link first, which lets the session go; the SDK's close then waits for its
        # keep-alive task, which sleeps in whole seconds. The worker need not sit that out before it takes the
        # next session; run() waits for every close before it returns (at most ``close_grace`` after its
        # shutdown deadline).
        task = asyncio.create_task(_close_quietly(receiver))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _hold(self, receiver: AsyncReceiver, renewer: LockRenewer) -> SessionHold:
        hold = SessionHold(receiver, sessionful=self._subscription.requires_session)
        if self._subscription.requires_session:
            _keep_session(receiver, renewer, hold)
            topic, subscription = self._topic, self._subscription
            ttl = min(topic.default_message_time_to_live, subscription.default_message_time_to_live)
            hold.read_tombstones(Tombstones.load(receiver.session, ttl=ttl, turn=hold.state_turn))
        return hold

    def _receiver(self) -> AsyncReceiver:
        sessions = self._subscription.requires_session
        return subscription_receiver(
            self._client,
            self._topic.name,
            self._subscription.name,
            next_session=sessions,
            max_wait_time=self.options.session_wait,
            socket_timeout=self.options.read_timeout,
            # A session's messages are the worker's alone while it holds the session, so they are kept as
            # they come, in order. Without prefetch the SDK releases every message that arrives between two
            # receives (``enhanced_message_received_async``), and the broker hands it back after the ones
            # sent meanwhile: out of order, once a kept session is received again.
            prefetch_count=self.options.batch_size if sessions else 0,
        )

    async def _drain(
        self, taken: _Taken, stop: asyncio.Event, renewer: LockRenewer, supply: Supply[_Taken]
    ) -> None:
        """Work the session's batches; let it go when it runs dry, or after a short batch if another
        session waits, taken, once every message in hand is done.

        Each batch is queued by record as it comes (``_record_queues``), and the next is received while it is
        worked: up to a batch's size of messages are in hand before the worker waits for some to be done.
        While none other waits, the session is kept: its next changes are received as they come, instead of
        waiting for it to be taken again. It is then received in short looks (``kept_look``), so that a
        session taken meanwhile is noticed within one, and let go once dry for ``idle_wait``. A session
        just taken is not let go for another before ``first_look``: it was given because it holds messages.
        """
        hold = taken.hold
        queues = RecordQueues(hold, lambda group: self._work_through(group, hold, stop))
        try:
            await self._receive_into(queues, taken, stop, renewer=renewer, supply=supply)
        except BaseException:
            # The session goes: the messages in hand are left (or given back) for its next holder.
            await asyncio.shield(queues.cancel())
            raise
        await queues.finish()

    async def _receive_into(
        self,
        queues: RecordQueues,
        taken: _Taken,
        stop: asyncio.Event,
        *,
        renewer: LockRenewer,
        supply: Supply[_Taken],
    ) -> None:
        """Receive the session's batches into ``queues`` until it is to be let go (see ``_drain``)."""
        receiver, hold = taken.receiver, taken.hold
        options = self.options
        dry = 0.0  # seconds of looks in a row that found nothing
        received = False  # whether any of the session's messages came to this holder yet
        while not stop.is_set() and not hold.lost and queues.failure is None:
            if self._gate is not None and self._gate.paused:
                return  # paused by an operator: let the session go; its messages wait in order
            if queues.in_hand:
                messages = await self._received_beside(receiver, queues)
                if not messages:
                    continue  # not dry: the session's messages in hand are still being worked
            else:
                look = options.kept_look if self._others_wait(supply) else options.dry_look
                wait = min(look, options.idle_wait - dry)
                messages = await self._look(receiver, options.batch_size, wait)
            if not messages or hold.lost:
                if messages:
                    return  # the hold was lost as they came: they are left for the next holder
                # A look that waited and found nothing (one beside work in hand does not come here).
                dry += wait
                # Ten looks of 0.05 s add up to 0.49999999999999994: within _ROUNDING, that is 0.5 s.
                spent = dry + _ROUNDING
                for_others = self._others_wait(supply) and (received or spent >= options.first_look)
                if spent >= options.idle_wait or for_others:
                    return  # dry
                continue
            dry = 0.0
            received = True
            if hold.reading and not await _tombstones_unless_stopped(hold, stop):
                await _abandon_all(hold, messages)  # stopped first: they come back, in order
                return
            if not self._subscription.requires_session:
                for message in messages:
                    renew_in_background(renewer, receiver, message, on_failure=hold.renewal_failed)
            queues.add(messages)
            if len(messages) < options.batch_size and self._others_wait(supply):
                return

    async def _received_beside(self, receiver: AsyncReceiver, queues: RecordQueues) -> list[ReceivedMessage]:
        """The session's next messages while others are in hand, taken so as not to hold up their
        settlements.

        The SDK reads a connection under the lock its writes take, and a receive that waits reads for up
        to ``read_timeout`` at a time: each settlement of a message in hand then waited for that read to
        end (at 200 changes/s p99 towards F&O went from 0.5-0.6 s to 0.7-1.5 s). So the messages that the
        settlements' own reads brought (prefetch keeps them) are taken without a wait, after each record
        done; only when none was done for a look, and so none is likely being settled, does a receive wait
        on the connection.
        """
        options = self.options
        room = options.batch_size - queues.in_hand
        if room <= 0:  # a batch's size in hand: nothing more until some of it is done
            await queues.one_done()
            return []
        if self._subscription.requires_session:  # without sessions (no prefetch) a receiver holds nothing
            messages = await receive(receiver, max_count=room, max_wait=_HELD_ONLY)
            if messages:
                return messages
        if await queues.one_done(within=options.kept_look):
            return []
        return await self._look(receiver, room, options.kept_look)

    async def _look(self, receiver: AsyncReceiver, most: int, wait: float) -> list[ReceivedMessage]:
        """Up to ``most`` of the session's messages, the first as it comes within ``wait``.

        Asked for a batch, the SDK hands it over only at the end of the wait, or 0.2 s after its first
        message (its ``_further_pull_receive_timeout``), even when the messages were there at the start: a
        session's next change waited for the end of each look (53 ms median from its send to its receipt,
        with looks of 0.05 s). Asked for one message, the SDK hands it over as it comes (3 ms, with looks of
        1 s); the others its prefetch brought are then taken without a wait. Without sessions there is no
        prefetch, and the SDK releases what comes between two receives: there one receive asks for them all.
        """
        if not self._subscription.requires_session:
            return await receive(receiver, max_count=most, max_wait=wait)
        first = await receive(receiver, max_count=1, max_wait=wait)
        if not first or most <= 1:
            return first
        return first + await receive(receiver, max_count=most - 1, max_wait=_HELD_ONLY)

    def _others_wait(self, supply: Supply[_Taken]) -> bool:
        """Whether another session waits for a worker (without sessions, every receiver gets the same)."""
        return self._subscription.requires_session and not supply.empty

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


async def _surviving(backoff: Backoff, attempt: Coroutine[Any, Any, None]) -> None:
    """Run one take or one session's work; after a failure, wait as ``backoff`` says (the loop goes on)."""
    try:
        await attempt
    except LockLostError as exc:
        _log.warning("session lost: %s", exc)
        await backoff.wait(exc)
    except TransientError as exc:
        # A passing fault, at once: the pause keeps a namespace refusing connections outright from being
        # asked in a tight loop.
        await backoff.wait(exc)
    except BusError as exc:
        _log.warning("Service Bus failed, reconnecting: %s", exc)
        await backoff.wait(exc)
    except Exception as exc:  # noqa: BLE001 - logged with its traceback; the loop must go on
        # A worker must outlive any one session's trouble, or the consumer silently stops.
        _log.exception("session worker failed; starting over")
        await backoff.wait(exc)
    else:
        backoff.reset()


def _keep_session(receiver: AsyncReceiver, renewer: LockRenewer, hold: SessionHold) -> None:
    """Have the session's lock renewed while the worker holds it; a failed renewal loses the hold."""
    session = receiver.session
    if session.locked_until_utc is None:
        # Without the lock time from the attach the SDK can neither renew nor trust this session: let it go
        # (closing the receiver releases it) and accept one afresh.
        raise TransientError(f"session {session.session_id!r} was accepted without a lock time")
    renew_in_background(renewer, receiver, session, on_failure=hold.renewal_failed)


async def _tombstones_unless_stopped(hold: SessionHold, stop: asyncio.Event) -> bool:
    """Wait for the session's tombstones, read while its first messages came; False when stopped first
    (a failed read raises)."""
    reading = await done_unless_stopped(stop, hold.tombstones_read())
    if reading.cancelled() or stop.is_set():
        return False  # a read that failed at the very moment of the stop: the messages go back all the same
    reading.result()
    return True


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


async def _opened_unless_stopped(
    receiver: AsyncReceiver, stop: asyncio.Event, read_while_waiting: float
) -> bool:
    """Open the receiver (for a session, wait for one, reading its connection every ``read_while_waiting``
    seconds at most); give up soon if ``stop`` is set meanwhile.

    Waiting for a free session takes up to ``session_wait`` (one attempt: ``open_once``); a worker holding no
    messages has nothing to finish, so shutdown must not wait for that.
    """
    opening = asyncio.ensure_future(open_once(receiver, read_while_waiting=read_while_waiting))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if opening.done():
            opening.result()  # an error while opening propagates to the worker's handlers
            return True
        # Give the connection a moment to come up (or fail), so that it closes in order; one still
        # connecting after that is cut off, its socket closed all the same (``abandon_open``).
        await asyncio.wait({opening}, timeout=_OPEN_GRACE)
    except asyncio.CancelledError:
        # The worker itself is cancelled (the shutdown deadline): the open must not run on alone.
        await asyncio.shield(abandon_open(receiver, opening))
        raise
    finally:
        stopping.cancel()
    await abandon_open(receiver, opening)
    return False
