"""The Service Bus SDK's objects under the names the pipeline uses, and the few calls that build them.

The rest of dualbus reaches ``azure.servicebus`` through here and ``shared.bus`` alone (a test enforces
it), so that the SDK's types, constants and exceptions stay behind one boundary. The aliases are the
SDK's own classes: a message received here is the SDK's, and settling it is the SDK's call, wrapped by
the caller in ``shared.bus.bus_errors`` so that no ``azure.*`` exception escapes.

SDK reference: https://learn.microsoft.com/python/api/azure-servicebus/azure.servicebus
"""

from __future__ import annotations

from typing import Any, TypeAlias

from azure.servicebus import (
    NEXT_AVAILABLE_SESSION,
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusMessageBatch,
    ServiceBusReceivedMessage,
    ServiceBusReceiver,
    ServiceBusSender,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import AutoLockRenewer, ServiceBusSession
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient
from azure.servicebus.aio import ServiceBusReceiver as AsyncServiceBusReceiver
from azure.servicebus.aio import ServiceBusSender as AsyncServiceBusSender
from azure.servicebus.amqp import AmqpAnnotatedMessage, AmqpMessageBodyType, AmqpMessageProperties
from azure.servicebus.exceptions import MessageSizeExceededError

from dualbus.shared.bus import bus_errors

__all__ = [
    "AmqpBodyType",
    "AmqpMessage",
    "AmqpProperties",
    "AsyncBusClient",
    "AsyncReceiver",
    "AsyncSender",
    "BusClient",
    "MessageBatch",
    "OutgoingMessage",
    "ReceivedMessage",
    "Receiver",
    "Sender",
    "Session",
    "add_to_batch",
    "dead_letter_receiver",
    "lock_renewer",
    "subscription_receiver",
]

# Sending, receiving and settling.
ReceivedMessage: TypeAlias = ServiceBusReceivedMessage
OutgoingMessage: TypeAlias = ServiceBusMessage
MessageBatch: TypeAlias = ServiceBusMessageBatch
AsyncBusClient: TypeAlias = AsyncServiceBusClient
AsyncReceiver: TypeAlias = AsyncServiceBusReceiver
AsyncSender: TypeAlias = AsyncServiceBusSender
Session: TypeAlias = ServiceBusSession
# The synchronous client, for the operator's commands (dead-letters, alerts, control messages).
BusClient: TypeAlias = ServiceBusClient
Receiver: TypeAlias = ServiceBusReceiver
Sender: TypeAlias = ServiceBusSender
# A message with any AMQP body (a value, a sequence, several data sections), which ServiceBusMessage is not.
AmqpMessage: TypeAlias = AmqpAnnotatedMessage
AmqpProperties: TypeAlias = AmqpMessageProperties
AmqpBodyType: TypeAlias = AmqpMessageBodyType


def lock_renewer(max_lock_renewal_duration: float) -> AutoLockRenewer:
    """The SDK's background lock renewer, renewing each registered lock for up to the given seconds."""
    return AutoLockRenewer(max_lock_renewal_duration=max_lock_renewal_duration)


def subscription_receiver(
    client: AsyncBusClient,
    topic: str,
    subscription: str,
    *,
    next_session: bool,
    **options: Any,  # noqa: ANN401 - passed through to the SDK as its own options
) -> AsyncReceiver:
    """A receiver on one subscription; ``next_session`` takes whichever session is free next."""
    if next_session:
        options["session_id"] = NEXT_AVAILABLE_SESSION
    with bus_errors():
        return client.get_subscription_receiver(topic, subscription, **options)


def dead_letter_receiver(client: BusClient, topic: str, subscription: str) -> Receiver:
    """A receiver on a subscription's dead-letter queue that fetches only what it is asked for."""
    with bus_errors():
        return client.get_subscription_receiver(
            topic, subscription, sub_queue=ServiceBusSubQueue.DEAD_LETTER, prefetch_count=0
        )


def add_to_batch(batch: MessageBatch, message: OutgoingMessage) -> bool:
    """Add ``message`` to ``batch``; False when it does not fit (the batch is full, or it is too large)."""
    try:
        batch.add_message(message)
    except MessageSizeExceededError:
        return False
    return True
