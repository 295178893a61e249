"""Data events that F&O sends to a Service Bus queue or topic subscription, settled after publish.

Messages are received in peek-lock mode; a batch is completed only after its envelopes were published,
abandoned on a transient failure (it comes back), and dead-lettered when the payload can never be used.
See https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/business-events/managing-business-event-endpoints
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import orjson
from azure.servicebus import ServiceBusReceivedMessage
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver

from producers.errors import SourceError
from producers.fo_events import FoEventHandler
from shared.bus import bus_errors
from shared.errors import TransientError

__all__ = ["EventSource", "FoQueueIntake"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EventSource:
    """Where F&O publishes data events: a queue, or a topic and one of its subscriptions."""

    queue: str | None = None
    topic: str | None = None
    subscription: str | None = None


class FoQueueIntake:
    """Receives data events from Service Bus and publishes their changes, settling after publish."""

    def __init__(
        self,
        client: ServiceBusClient,
        source: EventSource,
        handler: FoEventHandler,
        *,
        batch_size: int = 100,
        max_wait_seconds: float = 1.0,
    ) -> None:
        self._client = client
        self._source = source
        self._handler = handler
        self._batch_size = batch_size
        self._max_wait = max_wait_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Receive and publish until ``stop`` is set."""
        with bus_errors():
            receiver = self._receiver()
            async with receiver:
                while not stop.is_set():
                    await self.receive_once(receiver)

    async def receive_once(self, receiver: ServiceBusReceiver) -> int:
        """One receive, publish and settle round; returns how many messages were completed."""
        with bus_errors():
            messages = await receiver.receive_messages(
                max_message_count=self._batch_size, max_wait_time=self._max_wait
            )
        if not messages:
            return 0
        usable: list[ServiceBusReceivedMessage] = []
        payloads: list[object] = []
        for message in messages:
            try:
                payloads.append(_payload(message))
                usable.append(message)
            except SourceError as exc:
                with bus_errors():
                    await receiver.dead_letter_message(
                        message, reason="InvalidDataEvent", error_description=str(exc)[:1024]
                    )
        try:
            await self._handler.handle(payloads)
        except (TransientError, SourceError) as exc:
            _log.warning("data events not published, abandoning them to come back: %s", exc)
            with bus_errors():
                for message in usable:
                    await receiver.abandon_message(message)
            return 0
        with bus_errors():
            for message in usable:
                await receiver.complete_message(message)
        return len(usable)

    def _receiver(self) -> ServiceBusReceiver:
        if self._source.queue:
            return self._client.get_queue_receiver(
                queue_name=self._source.queue, prefetch_count=self._batch_size
            )
        if self._source.topic and self._source.subscription:
            return self._client.get_subscription_receiver(
                topic_name=self._source.topic,
                subscription_name=self._source.subscription,
                prefetch_count=self._batch_size,
            )
        raise SourceError("data events need a queue, or a topic and a subscription")


def _payload(message: ServiceBusReceivedMessage) -> object:
    body = b"".join(bytes(part) for part in message.body)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"data event message {message.message_id} is not JSON") from exc
