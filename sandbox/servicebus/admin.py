"""The administration API (the Atom feed ``ServiceBusAdministrationClient`` speaks), on the AMQP port.

``ServiceBusAdministrationClient`` speaks HTTPS to the connection string's host and port (7.15 ignores
``UseDevelopmentEmulator`` for it), so the emulator answers TLS there: the server loop hands a connection
whose first byte is a TLS handshake (0x16) to this gateway, and one that opens with an HTTP method (a
client told to use plain HTTP) likewise, each on a thread of its own. After the handshake, a connection
opening with the AMQP header is AMQP over TLS and goes back to the server loop, and a WebSocket upgrade
is AMQP over WebSockets (``websocket.py``). The certificate is issued by
the sandbox CA (``sandbox/tls.py``); clients of the development emulator do not verify it, clients that do
are given the CA. Requests are run on the server loop's thread, where
the broker lives. Paths and verbs are the REST API's (https://learn.microsoft.com/rest/api/servicebus/
service-bus-resource-manager-overview, "Service Bus REST API" for entities): ``/{queue or topic}``,
``/{topic}/subscriptions/{name}``, ``.../rules/{name}``, ``/$Resources/queues|topics`` and the
subscription and rule lists with ``$skip``/``$top``, ``/$namespaceinfo``; PUT creates, and updates when it
carries ``If-Match`` (the SDK's update sends ``If-Match: *``). Errors are Azure's statuses (400, 401, 404,
409) with an ``<Error><Code/><Detail/></Error>`` body, which the SDK turns into its documented exceptions.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse
from xml.sax.saxutils import escape

from dualbus.sandbox.errors import SandboxAuthError
from dualbus.sandbox.servicebus import admin_xml, websocket
from dualbus.sandbox.servicebus.admin_xml import Runtime
from dualbus.sandbox.servicebus.catalog import DEFAULT_RULE, Catalog, Definition
from dualbus.sandbox.servicebus.entity import ACTIVE, SCHEDULED
from dualbus.sandbox.servicebus.errors import BrokerError
from dualbus.sandbox.servicebus.sas import LISTEN, MANAGE, KeyRing, resource_path, unauthorized
from dualbus.sandbox.tls import TlsFiles

__all__ = ["HTTP_METHOD_STARTS", "AdminApi", "AdminGateway", "Answer", "Request"]

_LOG = logging.getLogger(__name__)
_BAD = "com.microsoft:argument-error"
_UNAUTHORIZED = "amqp:unauthorized-access"
# A subscription's rules or one of them; a topic's name may hold "/".
_RULES_PATH = re.compile(r".+/subscriptions/[^/]+/rules(/[^/]+)?", re.IGNORECASE)
_MAX_BODY = 1024 * 1024
# First bytes of the HTTP requests the administration API takes: GET, PUT, DELETE, HEAD, POST.
HTTP_METHOD_STARTS = frozenset(b"GPDH")
# The AMQP protocol header's first bytes (AMQP 1.0, 2.2): how AMQP over TLS opens once the handshake is done.
_AMQP_HEADER = b"AMQP"
# How an HTTP GET opens: the only request that can ask for a WebSocket (RFC 6455, 4.1).
_GET = b"GET "
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
    # Whether the caller's token covers an entity path (its own path was checked before the request ran).
    covers: Callable[[str], bool] = lambda _path: True


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
        _check_forwarding_covered(request, properties)
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
        _check_forwarding_covered(request, properties)
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
    """Takes the connections that open with TLS or an HTTP method, one thread per connection.

    After the TLS handshake the first bytes tell the two protocols apart: AMQP over TLS (what
    ``ServiceBusClient(namespace, credential)`` speaks) opens with the ``AMQP`` protocol header and goes back
    to the server loop through ``amqp``; a GET asking for a WebSocket is AMQP over WebSockets (with TLS or
    without), bridged to the server loop through ``amqp`` too (``websocket.py``); anything else is an
    administration request.
    """

    def __init__(
        self,
        keys: KeyRing,
        run: Callable[[Callable[[], Any]], Any],
        api: Callable[[], AdminApi],
        *,
        tls: TlsFiles,
        amqp: Callable[[socket.socket, bytes], None],
    ) -> None:
        self.keys = keys
        self.run = run  # runs a call on the server loop's thread and returns its result
        self.api = api
        self.amqp = amqp
        self._context = tls.server_context()
        # The sandbox CA's PEM: what a verifying client (the SDK's samples) is told to trust.
        self.certificate_pem = tls.ca_bundle.read_bytes()

    def serve(self, sock: socket.socket, *, tls: bool = True) -> None:
        """Take over a connection that opened with a TLS handshake (or, without ``tls``, an HTTP request)."""
        threading.Thread(target=self._run, args=(sock, tls), name="servicebus-admin", daemon=True).start()

    def _run(self, sock: socket.socket, tls: bool) -> None:
        sock.setblocking(True)
        sock.settimeout(30)
        try:
            stream: socket.socket = self._context.wrap_socket(sock, server_side=True) if tls else sock
            start = _read_start(stream)
            if tls and start.startswith(_AMQP_HEADER):
                self.amqp(stream, start)  # the server loop owns the socket from here on
                return
            if start.startswith(_GET):
                start = websocket.read_head(stream, start)
                if websocket.is_upgrade(start):
                    stream.settimeout(None)
                    websocket.serve(stream, start, self.amqp)  # AMQP over WebSockets, until it closes
                    return
            with stream:
                _Handler(stream, stream.getpeername(), _Served(self, start))  # type: ignore[arg-type]
        except (OSError, ssl.SSLError) as exc:
            _LOG.debug("administration connection ended: %s", exc)
            sock.close()


@dataclass(frozen=True, slots=True)
class _Served:
    """What a request handler serves with: the gateway, and the bytes read to tell AMQP from HTTP."""

    gateway: AdminGateway
    start: bytes


def _read_start(sock: socket.socket) -> bytes:
    """The first bytes of a connection, enough to tell the AMQP header from an HTTP method."""
    start = b""
    while len(start) < len(_AMQP_HEADER):
        chunk = sock.recv(len(_AMQP_HEADER) - len(start))
        if not chunk:
            break
        start += chunk
    return start


class _Replay(io.RawIOBase):
    """A request stream whose first bytes were already read (to tell AMQP from HTTP)."""

    def __init__(self, start: bytes, rest: io.BufferedIOBase) -> None:
        self._start = start
        self._rest = rest

    def readable(self) -> bool:
        """Always: it is a request stream."""
        return True

    def readinto(self, buffer: Any) -> int:  # noqa: ANN401 - any writable buffer, as io passes it
        """The replayed bytes first, then at most one read of the socket (never waits for a full buffer)."""
        if self._start:
            count = min(len(buffer), len(self._start))
            buffer[:count] = self._start[:count]
            self._start = self._start[count:]
            return count
        data = self._rest.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Handler(BaseHTTPRequestHandler):
    server: _Served  # type: ignore[assignment]  # stands in for an HTTPServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        """Streams over the connection, the bytes already read put back in front."""
        super().setup()
        if self.server.start:
            self.rfile = io.BufferedReader(_Replay(self.server.start, self.rfile))

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
        keys = self.server.gateway.keys
        try:
            grant = keys.verify_authorization(self.headers.get("Authorization", ""), path.lower())
        except SandboxAuthError as exc:
            self._answer(error(401, str(exc)))
            return
        right = _right_for(path)
        if not grant.allows(right):
            self._answer(error(401, unauthorized(right, path)))
            return
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        base = f"{scheme}://{self.headers.get('Host', 'localhost')}"
        update = self.headers.get("If-Match") is not None
        covers = lambda entity: grant.covers(entity, keys.clock())  # noqa: E731 - bound to this request
        request = Request(method, path, parse_qs(url.query), body, base, update, covers)
        api = self.server.gateway.api()
        try:
            answer: Answer = self.server.gateway.run(lambda: api.handle(request))
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


def _right_for(path: str) -> str:
    """The right a request on ``path`` needs ("Rights required for Service Bus operations",
    sandbox/servicebus/requests.py): a subscription's rules (``<topic>/subscriptions/<name>/rules...``) take
    Listen; describing, listing, creating, updating and deleting entities take Manage."""
    return LISTEN if _RULES_PATH.fullmatch(path) else MANAGE


def _check_forwarding_covered(request: Request, properties: dict[str, Any]) -> None:
    """Refuse forwarding to an entity the caller's token does not cover: Azure wants "Manage permissions on
    both the source and the destination entity"
    (https://learn.microsoft.com/azure/service-bus-messaging/service-bus-auto-forwarding); without this a
    token for one entity could send into any other by forwarding its own there. (401; Azure's wording for
    this refusal is not published, so this one is the emulator's own.)"""
    for name in ("ForwardTo", "ForwardDeadLetteredMessagesTo"):
        target = properties.get(name)
        if target and not request.covers(resource_path(str(target))):
            raise BrokerError(_UNAUTHORIZED, f"the token does not cover {name} {target!r}", status=401)
