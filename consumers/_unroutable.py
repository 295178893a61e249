"""Dead-lettering what a topic's catch-all subscription receives: messages no direction subscription takes.

Service Bus drops a message that no rule takes, so each topic has an ``unroutable`` subscription taking
exactly those (``shared.routing``). Every consumer of a topic also drains it: each message there is
dead-lettered at once with reason ``Unroutable`` and a description of why no direction took it, which
``dualbus dlq`` and ``dualbus status`` show. The subscription has no sessions, so the consumers of a topic
share it as competing receivers.
"""

from __future__ import annotations

import asyncio
import logging

from dualbus.shared.bus import async_bus_client
from dualbus.shared.bus_calls import dead_letter, opened, receive
from dualbus.shared.bus_types import AsyncBusClient, AsyncReceiver, ReceivedMessage, subscription_receiver
from dualbus.shared.errors import ConfigError, DualbusError, Rejection
from dualbus.shared.messages import application_properties
from dualbus.shared.retry import RECONNECT_RETRY, Backoff, RetryPolicy
from dualbus.shared.settings import Settings
from dualbus.shared.topology import TopicSpec

__all__ = ["UnroutableDrain", "drain_unroutable"]

_log = logging.getLogger("dualbus.consumer")
_BATCH = 50


class UnroutableDrain:
    """Dead-letters every message of one topic's unroutable subscription until stopped."""

    def __init__(
        self,
        client: AsyncBusClient,
        topic: TopicSpec,
        *,
        wait: float = 1.0,
        reconnect: RetryPolicy = RECONNECT_RETRY,
    ) -> None:
        """``wait`` bounds one receive, and so how long a stop may take to be noticed; ``reconnect`` says how
        long to wait before opening the receiver again after a failure."""
        self._client = client
        self._topic = topic
        self._wait = wait
        self._reconnect = reconnect
        self.dead_lettered = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set; a failure is logged and the receiver opened again after a backoff."""
        backoff = Backoff(self._reconnect, stop)
        while not stop.is_set():
            try:
                await self._drain(stop, backoff)
            except DualbusError as exc:
                _log.warning("draining %s/unroutable failed, reconnecting: %s", self._topic.name, exc)
                await backoff.wait(exc)
            except Exception as exc:  # noqa: BLE001 - logged with its traceback; the drain must go on
                # Like a session worker, the drain must outlive any one batch's trouble or it stops unseen.
                _log.exception("draining %s/unroutable failed; starting over", self._topic.name)
                await backoff.wait(exc)

    async def _drain(self, stop: asyncio.Event, backoff: Backoff) -> None:
        subscription = self._topic.unroutable
        receiver = subscription_receiver(
            self._client, self._topic.name, subscription.name, next_session=False, max_wait_time=self._wait
        )
        async with opened(receiver):
            while not stop.is_set():
                batch = await receive(receiver, max_count=_BATCH, max_wait=self._wait)
                backoff.reset()  # the receiver works: a later failure waits the first backoff again
                for message in batch:
                    await self._dead_letter(receiver, message)

    async def _dead_letter(self, receiver: AsyncReceiver, message: ReceivedMessage) -> None:
        why = self._topic.unroutable.why(application_properties(message), message.session_id)
        description = f"no subscription of {self._topic.name} takes message {message.message_id}: {why}"
        _log.error("dead-lettering message %s (Unroutable): %s", message.message_id, description)
        reason = Rejection.UNROUTABLE.value
        await dead_letter(receiver, message, reason=reason, description=description[:1024])
        self.dead_lettered += 1


async def drain_unroutable(settings: Settings, topic: TopicSpec, stop: asyncio.Event) -> int:
    """Dead-letter ``topic``'s unroutable messages with a client of its own until ``stop``; how many."""
    if settings.servicebus is None:
        raise ConfigError("DUALBUS_SERVICEBUS__CONNECTION_STRING or __NAMESPACE must be set")
    async with async_bus_client(settings.servicebus) as client:
        drain = UnroutableDrain(client, topic)
        await drain.run(stop)
    return drain.dead_lettered
