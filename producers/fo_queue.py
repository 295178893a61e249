"""Data events that reach a Service Bus queue or topic subscription through Dataverse, settled after publish.

With the Power Platform integration, F&O's Service Bus endpoints are Dataverse service endpoints:
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/e315b9a767be2310f4dbd29db22785d1bbe62881/articles/fin-ops-core/dev-itpro/business-events/managing-business-event-endpoints.md
Such an endpoint writes the RemoteExecutionContext in its MessageFormat: .NET Binary (content type
``application/msbin1``), JSON (``application/json``) or XML (``application/xml``):
https://github.com/MicrosoftDocs/powerapps-docs/blob/1cbdbbce58d16aeb4ffd801809fc04baaa7807d7/powerapps-docs/developer/data-platform/write-listener-application-azure-solution.md
https://github.com/MicrosoftDocs/powerapps-docs/blob/0084d69f59c9f9e2bd630e0de7011afc1363e6e4/powerapps-docs/developer/data-platform/reference/entities/serviceendpoint.md
dualbus reads JSON only; a message in another format is dead-lettered with reason ``UnsupportedEventFormat``.

Messages are received in peek-lock mode; a batch is completed only after its changes were published,
abandoned on a failure a retry may fix (it comes back), and a message whose payload can never be used is
dead-lettered (``InvalidDataEvent``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import orjson

from dualbus.producers.errors import InvalidDataEventError, SourceError
from dualbus.producers.fo_events import FoDataEvent, parse_data_event
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.shared.bus_calls import abandon, complete, dead_letter, opened, receive
from dualbus.shared.bus_types import AsyncBusClient, AsyncReceiver, ReceivedMessage
from dualbus.shared.errors import BusError, TransientError
from dualbus.shared.retry import RECONNECT_RETRY, Backoff, RetryPolicy

__all__ = ["INVALID_EVENT", "UNSUPPORTED_FORMAT", "EventSource", "FoQueueIntake"]

_log = logging.getLogger(__name__)
UNSUPPORTED_FORMAT = "UnsupportedEventFormat"
INVALID_EVENT = "InvalidDataEvent"
_JSON = "application/json"
_DESCRIPTION_LIMIT = 1024


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
        client: AsyncBusClient,
        source: EventSource,
        handler: FoEventHandler,
        *,
        batch_size: int = 100,
        max_wait_seconds: float = 1.0,
        reconnect: RetryPolicy = RECONNECT_RETRY,
    ) -> None:
        """``reconnect`` says how long to wait before opening the receiver again after Service Bus failed."""
        self._reconnect = reconnect
        self._client = client
        self._source = source
        self._handler = handler
        self._batch_size = batch_size
        self._max_wait = max_wait_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Receive and publish until ``stop`` is set; when Service Bus fails, reconnect after a backoff."""
        backoff = Backoff(self._reconnect, stop)
        while not stop.is_set():
            try:
                async with opened(self._receiver()) as receiver:
                    while not stop.is_set():
                        await self.receive_once(receiver)
                        backoff.reset()  # the receiver works: a later failure waits the first backoff
            except (TransientError, BusError) as exc:
                # Unsettled events come back when their locks expire; a misconfigured source is raised.
                _log.warning("receiving data events failed, reconnecting: %s", exc)
                await backoff.wait(exc)

    async def receive_once(self, receiver: AsyncReceiver) -> int:
        """One receive, publish and settle round; returns how many messages were completed."""
        messages = await receive(receiver, max_count=self._batch_size, max_wait=self._max_wait)
        if not messages:
            return 0
        usable: list[ReceivedMessage] = []
        events: list[FoDataEvent] = []
        for message in messages:
            read = _read(message)
            if isinstance(read, _Refusal):
                description = read.description[:_DESCRIPTION_LIMIT]
                await dead_letter(receiver, message, reason=read.reason, description=description)
                continue
            events.append(read)
            usable.append(message)
        try:
            await self._handler.handle(events)
        except (TransientError, SourceError) as exc:
            _log.warning("data events not published, abandoning them to come back: %s", exc)
            await abandon(receiver, usable)
            return 0
        await complete(receiver, usable)
        return len(usable)

    def _receiver(self) -> AsyncReceiver:
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


@dataclass(frozen=True, slots=True)
class _Refusal:
    """Why a message can never be used: its dead-letter reason and description."""

    reason: str
    description: str


def _read(message: ReceivedMessage) -> FoDataEvent | _Refusal:
    content_type = (message.content_type or "").split(";")[0].strip().lower()
    if content_type != _JSON:
        return _Refusal(
            UNSUPPORTED_FORMAT,
            f"data event message {message.message_id} has content type {message.content_type!r}; dualbus "
            "reads JSON only: set the message format of the Dataverse service endpoint that sends here to "
            "JSON (serviceendpoint.messageformat = 2); the next F&O scan publishes this change meanwhile",
        )
    try:
        return parse_data_event(orjson.loads(b"".join(bytes(part) for part in message.body)))
    except orjson.JSONDecodeError:
        return _Refusal(INVALID_EVENT, f"data event message {message.message_id} is not JSON")
    except InvalidDataEventError as exc:
        return _Refusal(INVALID_EVENT, f"data event message {message.message_id}: {exc}")
