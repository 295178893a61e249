"""The two kinds of data event endpoint the twin delivers to: an HTTPS webhook and Service Bus.

With the Power Platform integration, F&O's HTTPS endpoints become Dataverse webhooks and its Service Bus
queues and topics Dataverse Service Bus endpoints:
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/e315b9a767be2310f4dbd29db22785d1bbe62881/articles/fin-ops-core/dev-itpro/business-events/managing-business-event-endpoints.md
A webhook gets a JSON POST with the ``x-ms-dynamics-organization``, ``x-ms-dynamics-entity-name``,
``x-ms-dynamics-request-name`` and ``x-ms-correlation-request-id`` headers:
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/use-webhooks.md
(``x-request-id``, "a unique identifier for the request", is in the page's 2018 revision only), and its
authentication as configured: HttpHeader (headers sent with every request) or WebhookKey (``?code=<key>``):
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/register-web-hook.md
A Service Bus endpoint gets the same JSON with content type application/json (the ServiceEndpoint's JSON
message format) and the OperationId as message id, so duplicate detection drops resends:
https://github.com/MicrosoftDocs/powerapps-docs/blob/1cbdbbce58d16aeb4ffd801809fc04baaa7807d7/powerapps-docs/developer/data-platform/write-listener-application-azure-solution.md
Library errors (httpx, azure.servicebus) are translated here into DeliveryError, which the publisher retries.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import Literal

import httpx
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender
from azure.servicebus.exceptions import ServiceBusError
from pydantic import SecretStr

from dualbus.sandbox.fo.events import Delivery, DeliveryError

__all__ = ["ServiceBusEndpoint", "WebhookEndpoint"]


class WebhookEndpoint:
    """POSTs each event as JSON to ``url``; any non-2xx answer or connection error is a failure."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        code: SecretStr | str | None = None,
        name: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.name = name or url
        self._url = url
        # Authentication values are secrets: kept out of the name, a repr and the logs.
        self._auth_headers = {k: SecretStr(v) for k, v in (headers or {}).items()}
        self._code = SecretStr(code) if isinstance(code, str) else code
        self._client = httpx.Client(timeout=timeout)

    def send(self, delivery: Delivery) -> None:
        """POST one event; raise DeliveryError unless the webhook answers 2xx."""
        params = {} if self._code is None else {"code": self._code.get_secret_value()}
        try:
            response = self._client.post(
                self._url, content=delivery.body, params=params, headers=self._headers(delivery)
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.name} unreachable: {type(exc).__name__}") from exc
        if not response.is_success:
            raise DeliveryError(f"webhook {self.name} answered {response.status_code}")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "x-request-id": str(uuid.uuid4()),
            "x-ms-dynamics-organization": delivery.organization,
            "x-ms-dynamics-entity-name": delivery.entity_name,
            "x-ms-dynamics-request-name": delivery.message_name,
            "x-ms-correlation-request-id": delivery.correlation_id,
            **{name: value.get_secret_value() for name, value in self._auth_headers.items()},
        }


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

    def send(self, delivery: Delivery) -> None:
        """Send one event; ``message_id`` is the OperationId so that duplicate detection can drop resends."""
        message = ServiceBusMessage(
            delivery.body, content_type="application/json", message_id=delivery.operation_id
        )
        # One sender for the publisher's threads: a failed one is rebuilt under the same lock, so that no
        # other thread is handed the sender being closed.
        with self._lock:
            try:
                self._open().send_messages(message)
            except (ServiceBusError, ValueError) as exc:
                # The SDK raises ValueError for a malformed connection string: retried, so the worker lives.
                self._reset()
                raise DeliveryError(f"Service Bus {self._kind} {self._entity}: {exc}") from exc

    def close(self) -> None:
        """Close the sender and the client."""
        with self._lock:
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
