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
dead-lettered (``InvalidDataEvent``). Publishing a batch retries F&O's reads and Service Bus's sends on its
own, which can outlast the queue's lock (60 s by default): a batch still being published after
``_RENEW_AFTER_SECONDS`` has its locks renewed until it is settled. After a batch was abandoned the intake
waits a backoff before it receives again: each delivery counts towards the queue's MaxDeliveryCount, and a
batch received again at once while F&O or Service Bus is down would be dead-lettered by the queue after a
few rounds (the next F&O scan would publish its changes, later).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import orjson

from dualbus.producers.errors import InvalidDataEventError, SourceError
from dualbus.producers.fo_events import FoDataEvent, parse_data_event
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.shared.bus_calls import (
    LockRenewer,
    abandon,
    complete,
    dead_letter,
    opened,
    receive,
    renew_in_background,
)
from dualbus.shared.bus_types import AsyncBusClient, AsyncReceiver, ReceivedMessage, lock_renewer
from dualbus.shared.errors import BusError, TransientError
from dualbus.shared.retry import RECONNECT_RETRY, Backoff, RetryPolicy

__all__ = ["INVALID_EVENT", "UNPUBLISHED_RETRY", "UNSUPPORTED_FORMAT", "EventSource", "FoQueueIntake"]

_log = logging.getLogger(__name__)
UNSUPPORTED_FORMAT = "UnsupportedEventFormat"
INVALID_EVENT = "InvalidDataEvent"
_JSON = "application/json"
_DESCRIPTION_LIMIT = 1024
# Most batches are published within a second; one still going after this long is being retried (F&O or
# Service Bus failing) and gets its locks renewed, well before the default 60 s lock runs out.
_RENEW_AFTER_SECONDS = 10.0
# Longer than any publish's retries last (their attempts are bounded), so a batch keeps its locks throughout.
_RENEW_FOR_SECONDS = 600.0
# How long to wait before receiving again after a batch went back unpublished: 1 s doubling to a minute, so
# that the queue's default MaxDeliveryCount of 10 lasts through an outage of about ten minutes.
UNPUBLISHED_RETRY = RetryPolicy(on=(Exception,), attempts=None, initial_wait=1.0, max_wait=60.0)


class _NotPublishedError(TransientError):
    """A batch's changes were not published; its messages were abandoned and come back."""


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
        unpublished: RetryPolicy = UNPUBLISHED_RETRY,
    ) -> None:
        """``reconnect`` says how long to wait before opening the receiver again after Service Bus failed,
        ``unpublished`` before receiving again after a batch could not be published."""
        self._reconnect = reconnect
        self._unpublished = unpublished
        self._client = client
        self._source = source
        self._handler = handler
        self._batch_size = batch_size
        self._max_wait = max_wait_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Receive and publish until ``stop`` is set; when Service Bus fails, reconnect after a backoff, and
        after a batch could not be published, receive again after one."""
        backoff = Backoff(self._reconnect, stop)
        unpublished = Backoff(self._unpublished, stop)
        renewer = lock_renewer(_RENEW_FOR_SECONDS)
        try:
            while not stop.is_set():
                try:
                    async with opened(self._receiver()) as receiver:
                        await self._rounds(receiver, renewer, (backoff, unpublished), stop)
                except _NotPublishedError as exc:
                    # Waited with the receiver closed: an open one would take the abandoned batch back into
                    # its prefetch, locked, and the locks would run out there (each expiry one more delivery).
                    await unpublished.wait(exc)  # the batch comes back; F&O or Service Bus needs a moment
                except (TransientError, BusError) as exc:
                    # Unsettled events come back when their locks expire; a misconfigured source is raised.
                    _log.warning("receiving data events failed, reconnecting: %s", exc)
                    await backoff.wait(exc)
        finally:
            await renewer.close()

    async def _rounds(
        self,
        receiver: AsyncReceiver,
        renewer: LockRenewer,
        backoffs: tuple[Backoff, ...],
        stop: asyncio.Event,
    ) -> None:
        """Receive, publish and settle until stopped; _NotPublishedError when a batch went back."""
        while not stop.is_set():
            await self.receive_once(receiver, renewer)
            for backoff in backoffs:
                backoff.reset()  # the receiver works and publishes: a later failure waits the first backoff

    async def receive_once(self, receiver: AsyncReceiver, renewer: LockRenewer | None = None) -> int:
        """One receive, publish and settle round; returns how many messages were completed.

        ``renewer`` renews the batch's locks while a slow publish goes on (none: they are not renewed).
        _NotPublishedError when the batch could not be published (its messages were abandoned).
        """
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
            await self._published(events, receiver, usable, renewer)
        except (TransientError, SourceError) as exc:
            _log.warning("data events not published, abandoning them to come back: %s", exc)
            await abandon(receiver, usable)
            raise _NotPublishedError(f"data events not published: {exc}") from exc
        await complete(receiver, usable)
        return len(usable)

    async def _published(
        self,
        events: list[FoDataEvent],
        receiver: AsyncReceiver,
        messages: list[ReceivedMessage],
        renewer: LockRenewer | None,
    ) -> None:
        """Publish the events' changes; renew the messages' locks once that takes longer than usual."""
        publishing = asyncio.ensure_future(self._handler.handle(events))
        try:
            done, _ = await asyncio.wait({publishing}, timeout=_RENEW_AFTER_SECONDS)
            if not done and renewer is not None:
                for message in messages:
                    renew_in_background(renewer, receiver, message, on_failure=_renewal_failed)
            await publishing
        finally:
            publishing.cancel()  # stopped meanwhile: the unsettled messages come back

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


async def _renewal_failed(renewable: object, error: Exception | None) -> None:
    """The SDK's renewer could not keep a lock: the message comes back once published (settling fails)."""
    del renewable
    _log.warning("renewing a data event's lock failed; it will be received again: %s", error)


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
