"""The two kinds of data event endpoint the twin delivers to: an HTTP(S) webhook and Service Bus.

F&O's business event endpoints include an HTTPS endpoint and Azure Service Bus queues and topics.
See https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/business-events/managing-business-event-endpoints
Library errors (httpx, azure.servicebus) are translated here into DeliveryError, so that the publisher
retries them and nothing else leaks out.
"""

from __future__ import annotations

import threading
from typing import Literal

import httpx
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender
from azure.servicebus.exceptions import ServiceBusError
from pydantic import SecretStr

from sandbox.fo.events import DeliveryError

__all__ = ["ServiceBusEndpoint", "WebhookEndpoint"]


class WebhookEndpoint:
    """POSTs each event as JSON to ``url``; any non-2xx answer or connection error is a failure."""

    def __init__(self, url: str, *, name: str | None = None, timeout: float = 10.0) -> None:
        self.name = name or url
        self._url = url
        self._client = httpx.Client(timeout=timeout)

    def send(self, payload: bytes, *, event_id: str) -> None:
        """POST one event; raise DeliveryError unless the webhook answers 2xx."""
        try:
            response = self._client.post(
                self._url,
                content=payload,
                headers={"Content-Type": "application/json", "X-Event-Id": event_id},
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self._url} unreachable: {exc}") from exc
        if not response.is_success:
            raise DeliveryError(f"webhook {self._url} answered {response.status_code}")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


class ServiceBusEndpoint:
    """Sends each event as a message to a Service Bus queue or topic through the azure-servicebus SDK."""

    def __init__(
        self,
        connection_string: SecretStr | str,
        entity_name: str,
        *,
        kind: Literal["queue", "topic"] = "topic",
        name: str | None = None,
    ) -> None:
        self.name = name or f"servicebus:{entity_name}"
        # Kept as a SecretStr: the connection string carries the SAS key and must not show in a repr or log.
        self._connection_string = (
            SecretStr(str(connection_string)) if isinstance(connection_string, str) else connection_string
        )
        self._entity = entity_name
        self._kind = kind
        self._client: ServiceBusClient | None = None
        self._sender: ServiceBusSender | None = None
        self._lock = threading.Lock()

    def send(self, payload: bytes, *, event_id: str) -> None:
        """Send one event; ``message_id`` is the EventId so that duplicate detection can drop resends."""
        message = ServiceBusMessage(payload, content_type="application/json", message_id=event_id)
        try:
            with self._lock:
                self._open().send_messages(message)
        except (ServiceBusError, ValueError) as exc:
            # The SDK raises ValueError for a malformed connection string: retried, so the worker lives.
            self._reset()
            raise DeliveryError(f"Service Bus {self._kind} {self._entity}: {exc}") from exc

    def close(self) -> None:
        """Close the sender and the client."""
        self._reset()

    def _open(self) -> ServiceBusSender:
        if self._sender is None:
            self._client = ServiceBusClient.from_connection_string(self._connection_string.get_secret_value())
            if self._kind == "queue":
                self._sender = self._client.get_queue_sender(queue_name=self._entity)
            else:
                self._sender = self._client.get_topic_sender(topic_name=self._entity)
        return self._sender

    def _reset(self) -> None:
        # A failed link is rebuilt on the next attempt rather than reused in an unknown state.
        sender, client = self._sender, self._client
        self._sender = self._client = None
        try:
            if sender is not None:
                sender.close()
            if client is not None:
                client.close()
        except ServiceBusError:
            pass
