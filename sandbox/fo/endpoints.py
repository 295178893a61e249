"""The two kinds of data event endpoint the twin delivers to: an HTTPS webhook and Service Bus.

With the Power Platform integration, F&O's HTTPS endpoints become Dataverse webhooks and its Service Bus
queues and topics Dataverse Service Bus endpoints:
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/e315b9a767be2310f4dbd29db22785d1bbe62881/articles/fin-ops-core/dev-itpro/business-events/managing-business-event-endpoints.md
A webhook gets a JSON POST with the ``x-ms-dynamics-organization``, ``x-ms-dynamics-entity-name``,
``x-ms-dynamics-request-name`` and ``x-ms-correlation-request-id`` headers:
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/use-webhooks.md
(``x-request-id``, "a unique identifier for the request", is in the page's 2018 revision only). When "the
size of the entire HTTP payload exceeds 256KB", the same page says, the ``x-ms-dynamics-msg-size-exceeded``
header is included and ParentContext, InputParameters, PreEntityImages and PostEntityImages are removed: such
an event names its row by PrimaryEntityId alone. The page gives the header no value, so the twin sends it
empty; it counts the body against 256,000 bytes, the smaller reading of "256KB". A webhook's authentication
is as configured: HttpHeader (headers sent with every request) or WebhookKey (``?code=<key>``):
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/register-web-hook.md
A Service Bus endpoint gets the same JSON with content type application/json (the ServiceEndpoint's JSON
message format) and the OperationId as message id, so duplicate detection drops resends:
https://github.com/MicrosoftDocs/powerapps-docs/blob/1cbdbbce58d16aeb4ffd801809fc04baaa7807d7/powerapps-docs/developer/data-platform/write-listener-application-azure-solution.md
Library errors (http.client, azure.servicebus) are translated here into DeliveryError, which the publisher
retries.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from typing import Literal
from urllib.parse import SplitResult, urlencode, urlsplit

import orjson
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender
from azure.servicebus.exceptions import ServiceBusError
from pydantic import SecretStr

from dualbus.sandbox.errors import SandboxError
from dualbus.sandbox.fo.events import Delivery, DeliveryError

__all__ = ["ServiceBusEndpoint", "WebhookEndpoint"]


# How a connection the server closed shows when it is used.
_CLOSED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)
# Dataverse's webhook payload limit and what it takes out past it (use-webhooks.md, see above).
_PAYLOAD_LIMIT = 256_000
_SIZE_EXCEEDED = "x-ms-dynamics-msg-size-exceeded"
_LEFT_OUT_PAST_LIMIT = ("ParentContext", "InputParameters", "PreEntityImages", "PostEntityImages")


class WebhookEndpoint:
    """POSTs each event as JSON to ``url``; any non-2xx answer or connection error is a failure.

    The standard library's ``http.client``, one kept-alive connection per processing thread: the twin
    stands in for F&O, whose sending side is not dualbus's to measure, and with httpx each POST cost the
    twin's process 0.7 ms of CPU against 0.2 ms (2,000 POSTs each, to a loopback server in a process of its
    own). At 200 changes/s the twin sends about 180 events a second, on the same two cores as the pipeline.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        code: SecretStr | str | None = None,
        name: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SandboxError("a webhook URL must be http(s)://host[:port]/path")
        # Named without its query and user info: a webhook key may ride in the URL (?code=<key>), and the
        # name shows in listings, delivery errors and logs.
        self.name = name or _shown(parts)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path, self._query = parts.path or "/", parts.query
        self._timeout = timeout
        # Authentication values are secrets: kept out of the name, a repr and the logs.
        self._auth_headers = {k: SecretStr(v) for k, v in (headers or {}).items()}
        self._code = SecretStr(code) if isinstance(code, str) else code
        self._tls = _client_context() if self._https else None
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._opening = threading.Lock()
        self._closed = False

    def send(self, delivery: Delivery) -> None:
        """POST one event; raise DeliveryError unless the webhook answers 2xx."""
        connection, kept = self._connection()
        status = self._post(connection, delivery, again_if_closed=kept)
        if not HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES:
            raise DeliveryError(f"webhook {self.name} answered {status}")

    def _post(
        self, connection: http.client.HTTPConnection, delivery: Delivery, *, again_if_closed: bool
    ) -> int:
        body, headers = _within_limit(delivery.body, self._headers(delivery))
        try:
            connection.request("POST", self._target(), body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except _CLOSED as exc:
            connection.close()
            if again_if_closed:
                # A kept-alive connection the server closed while it was idle, found out only as the event
                # went: the event goes once more on a new connection, before any wait. The server may have
                # read it before it closed; a webhook takes events at least once (F&O retries too).
                return self._post(connection, delivery, again_if_closed=False)
            raise DeliveryError(f"webhook {self.name} closed the connection: {type(exc).__name__}") from exc
        except (OSError, http.client.HTTPException) as exc:
            # A connection in an unknown state is not reused: the next attempt opens a fresh one.
            connection.close()
            raise DeliveryError(f"webhook {self.name} unreachable: {type(exc).__name__}") from exc
        return response.status

    def close(self) -> None:
        """Close every thread's connection; events sent afterwards fail (DeliveryError)."""
        with self._opening:
            self._closed = True
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it is one kept from an earlier event."""
        if self._closed:
            raise DeliveryError(f"webhook {self.name} is closed")
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._tls is not None:
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._tls
                )
            else:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.connection = connection
            with self._opening:
                self._opened.append(connection)
        if connection.sock is not None and _readable(connection.sock):
            connection.close()  # readable while idle: the server closed it (or sent what nobody asked for)
        return connection, connection.sock is not None

    def _target(self) -> str:
        query = [self._query] if self._query else []
        if self._code is not None:
            query.append(urlencode({"code": self._code.get_secret_value()}))
        return f"{self._path}?{'&'.join(query)}" if query else self._path

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


def _within_limit(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """The body and headers Dataverse sends a webhook: the context whole, or past its payload limit without
    its record and images, the header saying so."""
    if len(body) <= _PAYLOAD_LIMIT:
        return body, headers
    context = orjson.loads(body)
    for name in _LEFT_OUT_PAST_LIMIT:
        context.pop(name, None)
    return orjson.dumps(context), {**headers, _SIZE_EXCEEDED: ""}


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection's socket has something to read (or its end): poll, which, unlike select,
    takes descriptors past 1,024."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _client_context() -> ssl.SSLContext:
    """The system's trust store, or the bundle ``SSL_CERT_FILE`` names (OpenSSL reads it)."""
    return ssl.create_default_context()


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


def _shown(parts: SplitResult) -> str:
    """A URL as it may be shown: scheme, host and port as given (an IPv6 address in its brackets), and path,
    without user info or query (a key's place)."""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
