"""The synchronous Service Bus calls of the operator's commands (dead-letters), errors translated.

The synchronous twin of ``shared.bus_calls``: each call runs inside ``shared.bus.bus_errors``.

SDK reference: https://learn.microsoft.com/python/api/azure-servicebus/azure.servicebus.servicebusreceiver
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from dualbus.shared.bus import bus_errors
from dualbus.shared.bus_types import (
    AmqpMessage,
    BusClient,
    OutgoingMessage,
    ReceivedMessage,
    Receiver,
    Sender,
)

__all__ = [
    "abandon_now",
    "complete_now",
    "opened_now",
    "peek_now",
    "receive_now",
    "renew_lock_now",
    "send_now",
    "topic_sender_now",
]

_Link = TypeVar("_Link", Receiver, Sender)


def topic_sender_now(client: BusClient, topic: str) -> Sender:
    """A synchronous sender on one topic; open it with :func:`opened_now`."""
    with bus_errors():
        return client.get_topic_sender(topic_name=topic)


@contextmanager
def opened_now(link: _Link) -> Iterator[_Link]:
    """Open a synchronous receiver or sender for the block, and close it after."""
    with bus_errors():
        link.__enter__()
    try:
        yield link
    finally:
        with bus_errors():
            link.close()


def peek_now(receiver: Receiver, *, max_count: int, from_sequence: int) -> list[ReceivedMessage]:
    """Up to ``max_count`` messages from ``from_sequence`` on, without locking them."""
    with bus_errors():
        return receiver.peek_messages(max_message_count=max_count, sequence_number=from_sequence)


def receive_now(receiver: Receiver, *, max_count: int, max_wait: float) -> list[ReceivedMessage]:
    """Up to ``max_count`` messages from a synchronous receiver, locked for settling."""
    with bus_errors():
        return receiver.receive_messages(max_message_count=max_count, max_wait_time=max_wait)


def complete_now(receiver: Receiver, message: ReceivedMessage) -> None:
    """Complete one message from a synchronous receiver (the operator's commands)."""
    with bus_errors():
        receiver.complete_message(message)


def renew_lock_now(receiver: Receiver, message: ReceivedMessage) -> None:
    """Renew the lock on one message of a synchronous receiver."""
    with bus_errors():
        receiver.renew_message_lock(message)


def abandon_now(receiver: Receiver, message: ReceivedMessage) -> None:
    """Abandon one message from a synchronous receiver, so that it comes back."""
    with bus_errors():
        receiver.abandon_message(message)


def send_now(sender: Sender, message: OutgoingMessage | AmqpMessage) -> None:
    """Send one message from a synchronous sender (the operator's commands)."""
    with bus_errors():
        sender.send_messages(message)
