"""The administration API (the Atom feed ``ServiceBusAdministrationClient`` speaks), on the AMQP port.

``ServiceBusAdministrationClient`` speaks HTTPS to the connection string's host and port (7.15 ignores
``UseDevelopmentEmulator`` for it), so the emulator answers TLS there: the server loop hands a connection
whose first byte is a TLS handshake (0x16) to this gateway, and one that opens with an HTTP method (a
client told to use plain HTTP) likewise, each on a thread of its own. The certificate is self-signed;
clients of the development emulator do not verify it. Requests are run on the server loop's thread, where
the broker lives. Paths and verbs are the REST API's (https://learn.microsoft.com/rest/api/servicebus/
service-bus-resource-manager-overview, "Service Bus REST API" for entities): ``/{queue or topic}``,
``/{topic}/subscriptions/{name}``, ``.../rules/{name}``, ``/$Resources/queues|topics`` and the
subscription and rule lists with ``$skip``/``$top``, ``/$namespaceinfo``; PUT creates, and updates when it
carries ``If-Match`` (the SDK's update sends ``If-Match: *``). Errors are Azure's statuses (400, 401, 404,
409) with an ``<Error><Code/><Detail/></Error>`` body, which the SDK turns into its documented exceptions.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import pathlib
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dualbus.sandbox.errors import SandboxAuthError
from dualbus.sandbox.servicebus import admin_xml
from dualbus.sandbox.servicebus.admin_xml import Runtime
from dualbus.sandbox.servicebus.catalog import DEFAULT_RULE, Catalog, Definition
from dualbus.sandbox.servicebus.entity import ACTIVE, SCHEDULED
from dualbus.sandbox.servicebus.errors import BrokerError
from dualbus.sandbox.servicebus.sas import KeyRing

__all__ = ["HTTP_METHOD_STARTS", "AdminApi", "AdminGateway", "Answer", "Request"]

_LOG = logging.getLogger(__name__)
_BAD = "com.microsoft:argument-error"
_MAX_BODY = 1024 * 1024
# First bytes of the HTTP requests the administration API takes: GET, PUT, DELETE, HEAD, POST.
HTTP_METHOD_STARTS = frozenset(b"GPDH")
# Fewest path segments of a rule (topic/subscriptions/name/rules/rule) and a subscription, less one.
_RULE_SEGMENTS, _SUBSCRIPTION_SEGMENTS = 4, 2


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP status and its Atom body."""

    status: int
    body: str


@dataclass(frozen=True, slots=True)
class Request:
    """One administration request as the operations need it."""

    method: str
    path: str  # without the leading "/", names as the client wrote them
    query: dict[str, list[str]]
    body: bytes
    base: str  # scheme://host:port, for the ids and links of the answer
    update: bool  # PUT with If-Match: replace an existing resource


class AdminApi:
    """The administration operations on the catalog; called on the server loop's thread."""

    def __init__(self, catalog: Catalog, namespace: str) -> None:
        self.catalog = catalog
        self.namespace = namespace
        self.started_ms = int(catalog.clock() * 1000)

    def handle(self, request: Request) -> Answer:
        """Run one request; BrokerError becomes Azure's status and error body."""
        try:
            return self._route(request)
        except BrokerError as exc:
            return error(exc.status, exc.description)

    def _route(self, request: Request) -> Answer:  # noqa: PLR0911 - one branch per resource kind
        parts = request.path.split("/")
        lower = [part.lower() for part in parts]
        if lower == ["$namespaceinfo"] and request.method == "GET":
            return Answer(200, admin_xml.namespace_entry(request.base, self.namespace, self.started_ms))
        if lower[0] == "$resources" and lower[1:] in (["queues"], ["topics"]):
            return self._list_entities(request, lower[1])
        if lower[-4:-3] == ["subscriptions"] and lower[-2:-1] == ["rules"] and len(parts) > _RULE_SEGMENTS:
            return self._rule(request, "/".join(parts[:-4]), parts[-3], parts[-1])
        if lower[-3:-2] == ["subscriptions"] and lower[-1] == "rules" and request.method == "GET":
            return self._list_rules(request, "/".join(parts[:-3]), parts[-2])
        if lower[-2:-1] == ["subscriptions"] and len(parts) > _SUBSCRIPTION_SEGMENTS:
            return self._subscription(request, "/".join(parts[:-2]), parts[-1])
        if lower[-1] == "subscriptions" and len(parts) > 1 and request.method == "GET":
            return self._list_subscriptions(request, "/".join(parts[:-1]))
        return self._entity(request)

    # -- queues and topics ---------------------------------------------------------------------

    def _entity(self, request: Request) -> Answer:
        name = request.path
        path = name.lower()
        if request.method == "GET":
            return Answer(200, self._entity_entry(request.base, path))
        if request.method == "DELETE":
            self.catalog.delete_entity(name)
            return Answer(200, "")
        if request.method != "PUT":
            return error(405, f"{request.method} is not supported on an entity.")
        kind, properties, kept, _ = admin_xml.parse_entity(request.body)
        if kind == "QueueDescription":
            self.catalog.put_queue(name, properties, kept, update=request.update)
        elif kind == "TopicDescription":
            self.catalog.put_topic(name, properties, kept, update=request.update)
        else:
            raise BrokerError(_BAD, f"A {kind} cannot be put at '{name}'.", status=400)
        return Answer(200 if request.update else 201, self._entity_entry(request.base, path))

    def _entity_entry(self, base: str, path: str) -> str:
        queue = self.catalog.queue(path)
        if queue is not None:
            return admin_xml.entity_entry(base, path, "QueueDescription", queue, self._runtime(path))
        topic = self.catalog.topic(path)
        if topic is None:
            raise _not_found(path)
        return admin_xml.entity_entry(base, path, "TopicDescription", topic.definition, self._runtime(path))

    def _list_entities(self, request: Request, kind: str) -> Answer:
        paths = list(self.catalog.queue_paths() if kind == "queues" else self.catalog.topic_paths())
        skip, top = _paging(request.query)
        entries = [self._entity_entry(request.base, each) for each in paths[skip : skip + top]]
        return Answer(200, _feed(request, entries, len(paths), kind.capitalize()))

    # -- subscriptions -------------------------------------------------------------------------

    def _subscription(self, request: Request, topic: str, name: str) -> Answer:
        if request.method == "GET":
            return Answer(200, self._subscription_entry(request.base, topic, name, request.path))
        if request.method == "DELETE":
            self.catalog.delete_subscription(topic, name)
            return Answer(200, "")
        if request.method != "PUT":
            return error(405, f"{request.method} is not supported on a subscription.")
        kind, properties, kept, description = admin_xml.parse_entity(request.body)
        if kind != "SubscriptionDescription":
            raise BrokerError(_BAD, f"A {kind} cannot be put at '{request.path}'.", status=400)
        default_rule: Definition | None = None
        for child in description:
            if child.tag.rsplit("}", 1)[-1] == "DefaultRuleDescription":
                rule_name = next((c.text for c in child if c.tag.endswith("Name") and c.text), DEFAULT_RULE)
                default_rule = admin_xml.rule_from_element(child, rule_name)
        self.catalog.put_subscription(
            topic, name, properties, kept, update=request.update, default_rule=default_rule
        )
        answer = self._subscription_entry(request.base, topic, name, request.path)
        return Answer(200 if request.update else 201, answer)

    def _subscription_entry(self, base: str, topic: str, name: str, path: str) -> str:
        sub = self.catalog.subscription(topic, name)
        if sub is None:
            raise _not_found(f"{topic}/subscriptions/{name}")
        runtime = self._runtime(f"{topic.lower()}/subscriptions/{name.lower()}")
        return admin_xml.entity_entry(base, path, "SubscriptionDescription", sub.definition, runtime)

    def _list_subscriptions(self, request: Request, topic: str) -> Answer:
        found = self.catalog.topic(topic.lower())
        if found is None:
            raise _not_found(topic)
        names = sorted(sub.definition.name for sub in found.subscriptions.values())
        skip, top = _paging(request.query)
        entries = [
            self._subscription_entry(request.base, topic, n, f"{request.path}/{n}")
            for n in names[skip : skip + top]
        ]
        return Answer(200, _feed(request, entries, len(names), "Subscriptions"))

    # -- rules ---------------------------------------------------------------------------------

    def _list_rules(self, request: Request, topic: str, sub: str) -> Answer:
        rules = self.catalog.rules(topic, sub)
        skip, top = _paging(request.query)
        entries = [
            admin_xml.rule_entry(request.base, f"{request.path}/{r.name}", r)
            for r in rules[skip : skip + top]
        ]
        return Answer(200, _feed(request, entries, len(rules), "Rules"))

    def _rule(self, request: Request, topic: str, sub: str, name: str) -> Answer:
        if request.method == "GET":
            for rule in self.catalog.rules(topic, sub):
                if rule.name.lower() == name.lower():
                    return Answer(200, admin_xml.rule_entry(request.base, request.path, rule))
            raise _not_found(f"{topic}/subscriptions/{sub}/rules/{name}")
        if request.method == "DELETE":
            self.catalog.delete_rule(topic, sub, name)
            return Answer(200, "")
        if request.method != "PUT":
            return error(405, f"{request.method} is not supported on a rule.")
        definition = admin_xml.parse_rule(request.body, name)
        rule = self.catalog.put_rule(topic, sub, definition, update=request.update)
        return Answer(200 if request.update else 201, admin_xml.rule_entry(request.base, request.path, rule))

    # -- helpers -------------------------------------------------------------------------------

    def _runtime(self, path: str) -> Runtime:
        bus = self.catalog.bus
        entity = bus.entities.get(path)
        if entity is None:
            return Runtime()
        if entity.is_topic:
            scheduled = sum(1 for m in entity.messages.values() if m.state == SCHEDULED)
            return Runtime(scheduled=scheduled, subscriptions=len(bus.routes.get(path, [])))
        states = [m.state for m in entity.messages.values()]
        dead = len(entity.dead_letter.messages) if entity.dead_letter is not None else 0
        return Runtime(
            active=states.count(ACTIVE),
            dead_lettered=dead,
            scheduled=states.count(SCHEDULED),
            accessed_at_ms=entity.accessed_at_ms,
        )


def _not_found(name: str) -> BrokerError:
    return BrokerError("amqp:not-found", f"The messaging entity '{name}' could not be found.", status=404)


def _paging(query: dict[str, list[str]]) -> tuple[int, int]:
    try:
        skip = int(query.get("$skip", ["0"])[0])
        top = int(query.get("$top", ["100"])[0])
    except ValueError as exc:
        raise BrokerError(_BAD, f"$skip and $top must be integers: {exc}", status=400) from exc
    if skip < 0 or top < 1:
        raise BrokerError(_BAD, "$skip must be at least 0 and $top at least 1.", status=400)
    return skip, top


def _feed(request: Request, entries: list[str], total: int, title: str) -> str:
    """A page of entries; the next page's link while there are more, which the SDK follows."""
    skip, top = _paging(request.query)
    base, path = request.base, request.path
    more = skip + top < total
    next_href = f"{base}/{path}?$skip={skip + top}&$top={top}&api-version=2021-05" if more else None
    return admin_xml.feed(base, path, title, entries, next_href)


def error(status: int, detail: str) -> Answer:
    """Azure's error body."""
    return Answer(status, f"<Error><Code>{status}</Code><Detail>{escape(detail)}</Detail></Error>")


class AdminGateway:
    """Serves the administration API over TLS or plain HTTP, one thread per connection."""

    def __init__(
        self, keys: KeyRing, run: Callable[[Callable[[], Any]], Any], api: Callable[[], AdminApi]
    ) -> None:
        self.keys = keys
        self.run = run  # runs a call on the server loop's thread and returns its result
        self.api = api
        # PEM of the self-signed certificate: clients that verify (the SDK's samples do) can be told to trust
        # it, e.g. with REQUESTS_CA_BUNDLE and SSL_CERT_FILE.
        self._context, self.certificate_pem = _self_signed_context()

    def serve(self, sock: socket.socket, *, tls: bool = True) -> None:
        """Take over a connection that opened with a TLS handshake (or, without ``tls``, an HTTP request)."""
        threading.Thread(target=self._run, args=(sock, tls), name="servicebus-admin", daemon=True).start()

    def _run(self, sock: socket.socket, tls: bool) -> None:
        sock.setblocking(True)
        sock.settimeout(30)
        try:
            if not tls:
                with sock:
                    _Handler(sock, sock.getpeername(), self)  # type: ignore[arg-type]
                return
            with self._context.wrap_socket(sock, server_side=True) as wrapped:
                _Handler(wrapped, wrapped.getpeername(), self)  # type: ignore[arg-type] # stands in for a server
        except (OSError, ssl.SSLError) as exc:
            _LOG.debug("administration connection ended: %s", exc)


class _Handler(BaseHTTPRequestHandler):
    server: AdminGateway  # type: ignore[assignment]  # the gateway stands in for an HTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        """Read an entity, a rule, a list or the namespace."""
        self._handle("GET")

    def do_PUT(self) -> None:
        """Create or update an entity or a rule."""
        self._handle("PUT")

    def do_DELETE(self) -> None:
        """Delete an entity or a rule."""
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        path = unquote(url.path).strip("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if 0 < length <= _MAX_BODY else b""
        try:
            self.server.keys.verify(self.headers.get("Authorization", ""), path.lower())
        except SandboxAuthError as exc:
            self._answer(error(401, str(exc)))
            return
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        base = f"{scheme}://{self.headers.get('Host', 'localhost')}"
        update = self.headers.get("If-Match") is not None
        request = Request(method, path, parse_qs(url.query), body, base, update)
        api = self.server.api()
        try:
            answer: Answer = self.server.run(lambda: api.handle(request))
        except Exception:  # a bug must answer 500, not leave the client waiting  # noqa: BLE001
            _LOG.exception("administration request %s %s failed", method, path)
            answer = error(500, "The emulator failed on this request; see its log.")
        self._answer(answer)

    def _answer(self, answer: Answer) -> None:
        data = answer.body.encode()
        self.send_response(answer.status)
        kind = "entry" if "<entry" in answer.body[:200] else "feed"
        self.send_header("Content-Type", f"application/atom+xml;type={kind};charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Keep request lines out of the emulator's output."""
        _LOG.debug(format, *args)


def _self_signed_context() -> tuple[ssl.SSLContext, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    # Names a verifying client may use for the loopback emulator; a CA flag lets it serve as its own root.
    names = x509.SubjectAlternativeName(
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(names, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # ssl loads certificates from files only; they live just long enough to be read.
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = pathlib.Path(tmp) / "cert.pem", pathlib.Path(tmp) / "key.pem"
        cert_file.write_bytes(pem)
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context.load_cert_chain(cert_file, key_file)
    return context, pem
