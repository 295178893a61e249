"""A read-only slice of the administration API: runtime counts of queues, topics and subscriptions.

``ServiceBusAdministrationClient`` always speaks HTTPS to the connection string's host and port (7.15
ignores ``UseDevelopmentEmulator`` for it), so the emulator answers TLS on its AMQP port: the server loop
hands a connection whose first byte is a TLS handshake (0x16) to this gateway, on a thread of its own.
The certificate is self-signed; clients of the development emulator do not verify it. Answers are the
Atom entries of https://learn.microsoft.com/rest/api/servicebus/get-entity with the counts filled in.
"""

from __future__ import annotations

import datetime
import logging
import pathlib
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlparse
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sandbox.errors import SandboxAuthError
from sandbox.servicebus.entity import ACTIVE, SCHEDULED
from sandbox.servicebus.sas import KeyRing
from sandbox.servicebus.settlement import ServiceBus

__all__ = ["AdminGateway", "EntityCounts", "entity_counts"]

_LOG = logging.getLogger(__name__)
_NEVER = "0001-01-01T00:00:00Z"
_SB = "http://schemas.microsoft.com/netservices/2010/10/servicebus/connect"
_D2 = "http://schemas.microsoft.com/netservices/2011/06/servicebus"


@dataclass(frozen=True, slots=True)
class EntityCounts:
    """What the administration API reports about one entity."""

    kind: str  # "QueueDescription", "TopicDescription" or "SubscriptionDescription"
    name: str
    active: int = 0
    dead_lettered: int = 0
    scheduled: int = 0
    subscriptions: int = 0
    accessed_at_ms: int | None = None

    def atom(self) -> str:
        """The Atom entry the SDK deserialises into runtime properties."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        details = (
            f'<CountDetails xmlns:d2p1="{_D2}">'
            f"<d2p1:ActiveMessageCount>{self.active}</d2p1:ActiveMessageCount>"
            f"<d2p1:DeadLetterMessageCount>{self.dead_lettered}</d2p1:DeadLetterMessageCount>"
            f"<d2p1:ScheduledMessageCount>{self.scheduled}</d2p1:ScheduledMessageCount>"
            "<d2p1:TransferMessageCount>0</d2p1:TransferMessageCount>"
            "<d2p1:TransferDeadLetterMessageCount>0</d2p1:TransferDeadLetterMessageCount></CountDetails>"
        )
        total = self.active + self.dead_lettered + self.scheduled
        extra = (
            f"<SubscriptionCount>{self.subscriptions}</SubscriptionCount>"
            if self.kind == "TopicDescription"
            else ""
        )
        body = (
            f"<MessageCount>{total}</MessageCount><SizeInBytes>0</SizeInBytes><CreatedAt>{now}</CreatedAt>"
            f"<UpdatedAt>{now}</UpdatedAt><AccessedAt>{_accessed(self.accessed_at_ms)}</AccessedAt>"
            f"{details}{extra}"
        )
        name = escape(self.name)
        return (
            f'<entry xmlns="http://www.w3.org/2005/Atom"><id>{name}</id><title type="text">{name}</title>'
            f'<updated>{now}</updated><content type="application/xml"><{self.kind} xmlns="{_SB}" '
            f'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">{body}</{self.kind}></content></entry>'
        )


class AdminGateway:
    """Serves the runtime-count GETs over TLS, one thread per connection."""

    def __init__(self, keys: KeyRing, counts: Callable[[str], EntityCounts | None]) -> None:
        self.keys = keys
        self.counts = counts
        self._context = _self_signed_context()

    def serve(self, sock: socket.socket) -> None:
        """Take over a connection that opened with a TLS handshake."""
        threading.Thread(target=self._run, args=(sock,), name="servicebus-admin", daemon=True).start()

    def _run(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        sock.settimeout(30)
        try:
            with self._context.wrap_socket(sock, server_side=True) as tls:
                _Handler(tls, tls.getpeername(), self)  # type: ignore[arg-type] # stands in for a server
        except (OSError, ssl.SSLError) as exc:
            _LOG.debug("administration connection ended: %s", exc)


class _Handler(BaseHTTPRequestHandler):
    server: AdminGateway  # type: ignore[assignment]  # the gateway stands in for an HTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        """Answer a runtime-properties request, or 401/404."""
        path = unquote(urlparse(self.path).path).strip("/").lower()
        try:
            self.server.keys.verify(self.headers.get("Authorization", ""), path)
        except SandboxAuthError as exc:
            self._answer(401, f"<Error><Code>401</Code><Detail>{escape(str(exc))}</Detail></Error>")
            return
        counts = self.server.counts(path)
        if counts is None:
            self._answer(404, "<Error><Code>404</Code><Detail>The entity was not found.</Detail></Error>")
            return
        self._answer(200, counts.atom())

    def _answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/atom+xml;type=entry;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Keep request lines out of the emulator's output."""
        _LOG.debug(format, *args)


def _self_signed_context() -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # ssl loads certificates from files only; they live just long enough to be read.
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = pathlib.Path(tmp) / "cert.pem", pathlib.Path(tmp) / "key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context.load_cert_chain(cert_file, key_file)
    return context


def _accessed(at_ms: int | None) -> str:
    """AccessedAt as Azure writes it: the last receive, or .NET's DateTime.MinValue when there was none."""
    if at_ms is None:
        return _NEVER
    moment = datetime.datetime.fromtimestamp(at_ms / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entity_counts(bus: ServiceBus, path: str) -> EntityCounts | None:
    """The counts of the queue, topic or subscription at ``path`` (run on the broker's thread)."""
    entity = bus.entities.get(path)
    if entity is None or path.endswith("/$deadletterqueue"):
        return None
    if entity.is_topic:
        scheduled = sum(1 for m in entity.messages.values() if m.state == SCHEDULED)
        return EntityCounts(
            "TopicDescription", path, scheduled=scheduled, subscriptions=len(bus.routes.get(path, []))
        )
    kind = "SubscriptionDescription" if "/subscriptions/" in path else "QueueDescription"
    states = [m.state for m in entity.messages.values()]
    dead = len(entity.dead_letter.messages) if entity.dead_letter is not None else 0
    return EntityCounts(
        kind,
        path.rsplit("/", 1)[-1],
        active=states.count(ACTIVE),
        dead_lettered=dead,
        scheduled=states.count(SCHEDULED),
        accessed_at_ms=entity.accessed_at_ms,
    )
