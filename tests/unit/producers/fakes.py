"""A recording stand-in for the SDK's sender, handing out the SDK's own ServiceBusMessageBatch."""

from __future__ import annotations

from azure.servicebus import ServiceBusMessageBatch
from azure.servicebus.exceptions import MessageSizeExceededError

from shared.errors import TransientError


class RecordingSender:
    """Hands out real SDK batches of a chosen size and records what is sent."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.sent: list[ServiceBusMessageBatch] = []
        self.closed = False
        self.failing = False
        # Refuse batches of more messages than this, as a service that counts sizes differently would.
        self.refuse_over: int | None = None

    async def create_message_batch(self, max_size_in_bytes: int | None = None) -> ServiceBusMessageBatch:
        return ServiceBusMessageBatch(max_size_in_bytes=max_size_in_bytes or self.max_bytes)

    async def send_messages(self, batch: ServiceBusMessageBatch) -> None:
        if self.failing:
            raise TransientError("Service Bus is unavailable")
        if self.refuse_over is not None and len(batch) > self.refuse_over:
            # The SDK's own error; the publisher's boundary translates it.
            raise MessageSizeExceededError(message="The message size exceeds the limit.")
        self.sent.append(batch)

    async def close(self) -> None:
        self.closed = True


class RecordingClient:
    def __init__(self, max_bytes: int) -> None:
        self.senders: dict[str, RecordingSender] = {}
        self.max_bytes = max_bytes

    def get_topic_sender(self, topic_name: str) -> RecordingSender:
        return self.senders.setdefault(topic_name, RecordingSender(self.max_bytes))
