"""The Service Bus calls the pipeline makes, each with its ``azure.*`` errors translated (``shared.bus``).

Receiving, settling, sending and session state go through these instead of calling the SDK object and
wrapping the call in ``bus_errors`` at every site (the operator's synchronous calls are in
``shared.bus_calls_sync``). A lost lock raises LockLostError, an unavailable namespace TransientError,
anything else BusError (MessageTooLargeError for an oversized batch).

SDK reference: https://learn.microsoft.com/python/api/azure-servicebus/azure.servicebus.aio.servicebusreceiver
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from dualbus.shared.bus import bus_errors
from dualbus.shared.bus_types import (
    AsyncBusClient,
    AsyncReceiver,
    AsyncSender,
    MessageBatch,
    ReceivedMessage,
    Session,
)

_T = TypeVar("_T")
_log = logging.getLogger("dualbus.consumer")

__all__ = [
    "LockRenewer",
    "SessionState",
    "abandon",
    "abandon_open",
    "close",
    "complete",
    "dead_letter",
    "new_batch",
    "open_receiver",
    "opened",
    "read_session_state",
    "receive",
    "renew_in_background",
    "save_session_state",
    "send",
    "topic_sender",
]


class LockRenewer(Protocol):
    """Renews locks in the background (``AutoLockRenewer``); a test passes one whose renewals fail."""

    def register(
        self,
        receiver: AsyncReceiver,
        renewable: Session | ReceivedMessage,
        max_lock_renewal_duration: float | None = None,
        on_lock_renew_failure: Callable[[Any, Exception | None], Awaitable[None]] | None = None,
    ) -> None:
        """Keep ``renewable``'s lock renewed; call ``on_lock_renew_failure`` if that fails."""
        ...

    async def close(self) -> None:
        """Stop renewing."""
        ...


class SessionState(Protocol):
    """A session's state in Service Bus (``ServiceBusReceiver.session`` of the aio SDK)."""

    async def get_state(self) -> bytes | None:
        """The state saved last, None if none."""
        ...

    async def set_state(self, state: bytes | None) -> object:
        """Replace the state."""
        ...


async def open_receiver(receiver: AsyncReceiver) -> None:
    """Attach the receiver's link; a session receiver waits for its session (the SDK's retry budget)."""
    with bus_errors():
        await receiver.__aenter__()


async def open_once(receiver: AsyncReceiver, *, read_while_waiting: float | None = None) -> None:
    """``open_receiver`` in one attempt: for a session receiver, one wait for a free session.

    azure-servicebus 7.15 retries an open that timed out (``_open_with_retry``, with the client's
    ``retry_total``, 3 by default, sleeping 0.8, 1.6 and 3.2 s between), and no receiver waits at the broker
    while it sleeps: a look for the next free session meant to last ``max_wait_time`` lasts about six times
    as long, and a change that comes in a free session meanwhile waits for the next attach. The same
    ``retry_total`` governs every later call of the receiver (settlements, session state, lock renewals),
    whose retries are worth keeping, and the SDK takes no per-call setting; so the receiver's own
    configuration goes without retries for the open alone.
    """
    # The receiver's own copy of the client's retry settings; a receiver without one (another SDK release,
    # a test's fake) opens as it does.
    config = getattr(receiver, "_config", None)
    if config is None:
        await open_receiver(receiver)
        return
    retries, read_timeout = config.retry_total, config.socket_timeout
    config.retry_total = 0
    if read_while_waiting is not None:
        config.socket_timeout = read_while_waiting
    opened = False
    try:
        await open_receiver(receiver)
        opened = True
    finally:
        config.retry_total = retries
        if read_while_waiting is not None:
            config.socket_timeout = read_timeout
            _read_every(receiver, read_timeout, opened=opened)


def _read_every(receiver: AsyncReceiver, seconds: float, *, opened: bool) -> None:
    """Give the receiver's open handler and connection ``seconds`` as their read timeout again.

    While a session receiver waits for a session, the SDK's opening loop reads its connection for up to the
    socket timeout, then sleeps 0.05 s, and again (``ServiceBusReceiver._open``): with a receive's short read
    timeout that is ten turns a second for every look, which kept an idle consumer busy. A frame ends a read
    at once, however long its timeout, so a look may wait in long reads; the handler and its connection
    copy the timeout when they are made, and take the short one back here for the receives (``opened``: a
    look that failed has no handler to set, and nothing to warn of).
    """
    handler = getattr(receiver, "_handler", None)
    parts = (handler, getattr(handler, "_connection", None))
    settable = [part for part in parts if part is not None and hasattr(part, "_socket_timeout")]
    if opened and len(settable) < len(parts):
        # Another SDK release: its receives would read in the look's long reads, and every settlement of a
        # message in hand wait behind them (``Consumer._received_beside``).
        _log.warning(
            "the receiver's read timeout could not be set back to %g s (azure-servicebus changed)", seconds
        )
    for part in settable:
        part._socket_timeout = seconds  # noqa: SLF001 - the SDK takes no later setting


async def abandon_open(receiver: AsyncReceiver, opening: asyncio.Future[Any]) -> None:
    """Cancel ``opening`` (``open_receiver(receiver)`` under way), then close the receiver and its socket.

    The SDK leaves the socket open when an open is cancelled before its AMQP session begins: the client's
    ``close_async`` returns early without a session (``_pyamqp/aio/_client_async.py``, azure-servicebus
    7.15), and the receiver has dropped the client by then. The connection is taken while the open still
    runs, and closed here; left to the garbage collector, its transport warns (ResourceWarning) at any
    later moment, in whatever runs then.
    """
    connection = getattr(getattr(receiver, "_handler", None), "_connection", None)
    opening.cancel()
    try:
        # Waited for, not awaited: the caller's own cancellation must reach it, the open's must not.
        await asyncio.wait({opening})
        if not opening.cancelled():
            opening.exception()  # an open that failed first: its error is of no interest now
    finally:
        with contextlib.suppress(Exception):
            await receiver.close()
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


@asynccontextmanager
async def opened(receiver: AsyncReceiver) -> AsyncIterator[AsyncReceiver]:
    """Open ``receiver`` (its link attaches) for the block, and close it after."""
    await open_receiver(receiver)
    try:
        yield receiver
    finally:
        with bus_errors():
            await receiver.close()


async def receive(receiver: AsyncReceiver, *, max_count: int, max_wait: float) -> list[ReceivedMessage]:
    """Up to ``max_count`` messages, waiting at most ``max_wait`` seconds for the first."""
    with bus_errors():
        return await receiver.receive_messages(max_message_count=max_count, max_wait_time=max_wait)


async def complete(receiver: AsyncReceiver, messages: Iterable[ReceivedMessage]) -> None:
    """Complete each message, in order; the first failure stops the rest."""
    with bus_errors():
        for message in messages:
            await receiver.complete_message(message)


async def abandon(receiver: AsyncReceiver, messages: Iterable[ReceivedMessage]) -> None:
    """Abandon each message, in order, so that it comes back; the first failure stops the rest."""
    with bus_errors():
        for message in messages:
            await receiver.abandon_message(message)


async def dead_letter(
    receiver: AsyncReceiver, message: ReceivedMessage, *, reason: str | None, description: str | None
) -> None:
    """Move one message to its dead-letter queue with a reason and a description."""
    with bus_errors():
        await receiver.dead_letter_message(message, reason=reason, error_description=description)


async def read_session_state(session: SessionState) -> bytes | None:
    """The session's saved state (None when it holds none)."""
    with bus_errors():
        return await _closed_if_cut_off(session, session.get_state())


async def save_session_state(session: SessionState, state: bytes) -> None:
    """Replace the session's saved state."""
    with bus_errors():
        await _closed_if_cut_off(session, session.set_state(state))


async def _closed_if_cut_off(session: SessionState, call: Awaitable[_T]) -> _T:
    """Await a call on the session's receiver link; if the caller is cancelled meanwhile, close what the
    call may have opened.

    The SDK reopens a receiver whose handler went down (a connection error) to make the call
    (``_mgmt_request_response_with_retry``), and a reopen cut off by a cancellation leaves its socket
    behind (``abandon_open``). A state call is cancelled only when its session's hold ends, and the
    receiver is closed then in any case.
    """
    receiver = getattr(session, "_receiver", None)
    running = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        if receiver is None:
            running.cancel()
        else:
            await abandon_open(receiver, running)
        raise


def renew_in_background(
    renewer: LockRenewer,
    receiver: AsyncReceiver,
    renewable: Session | ReceivedMessage,
    *,
    on_failure: Callable[[Any, Exception | None], Awaitable[None]],
) -> None:
    """Have ``renewer`` keep a session's or a message's lock until it is settled; ``on_failure`` if not."""
    with bus_errors():
        renewer.register(receiver, renewable, on_lock_renew_failure=on_failure)


def topic_sender(client: AsyncBusClient, topic: str) -> AsyncSender:
    """A sender on one topic (its link opens with the first send)."""
    with bus_errors():
        return client.get_topic_sender(topic_name=topic)


async def new_batch(sender: AsyncSender, *, max_bytes: int | None) -> MessageBatch:
    """An empty batch, at most ``max_bytes`` large (None: the entity's limit)."""
    with bus_errors():
        return await sender.create_message_batch(max_size_in_bytes=max_bytes)


async def send(sender: AsyncSender, batch: MessageBatch) -> None:
    """Send a batch as one transfer."""
    with bus_errors():
        await sender.send_messages(batch)


async def close(*links: AsyncSender | AsyncReceiver) -> None:
    """Close senders or receivers, in order; the first failure stops the rest."""
    with bus_errors():
        for link in links:
            await link.close()
