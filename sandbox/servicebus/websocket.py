"""AMQP over WebSockets: what the SDKs speak through an HTTP proxy, or where port 5671 is closed.

Service Bus takes AMQP in binary WebSocket messages at ``wss://<namespace>/$servicebus/websocket`` with
the subprotocol ``AMQPWSB10`` (OASIS, AMQP WebSocket Binding 1.0,
http://docs.oasis-open.org/amqp-bindmap/amqp-wsb/v1.0/amqp-wsb-v1.0.html). The Python SDK's
``TransportType.AmqpOverWebsocket``, which any ``http_proxy`` implies, opens exactly that
(azure/servicebus/_common/_configuration.py adds the path, azure/servicebus/_pyamqp/constants.py names
the subprotocol, and its WebSocketTransport sends each AMQP write as one binary message). The emulator
takes the upgrade on any of its ports, after TLS or without it, as the administration gateway's thread
reads the request.

The handshake and the framing are wsproto's (RFC 6455). The AMQP engine is not told: the bridge hands
the server loop one end of a socket pair as an ordinary AMQP connection and carries bytes between the
other end and the WebSocket, on the gateway's thread, until either side closes.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
from collections.abc import Callable

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

__all__ = ["PATH", "SUBPROTOCOL", "is_upgrade", "read_head", "serve"]

_LOG = logging.getLogger(__name__)
PATH = "/$servicebus/websocket"
SUBPROTOCOL = "AMQPWSB10"
_END_OF_HEAD = b"\r\n\r\n"
_MAX_HEAD = 16 * 1024
_CHUNK = 64 * 1024
# RFC 6455 7.4.1: 1003, a data type the endpoint cannot accept (AMQP travels in binary messages only).
_UNSUPPORTED_DATA = 1003
_NORMAL_CLOSURE = 1000
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def read_head(sock: socket.socket, start: bytes) -> bytes:
    """``start`` and what follows it up to the end of the HTTP request's head (or 16 KiB), read from a
    blocking socket; every byte read is returned, to be replayed if the request is not an upgrade."""
    head = start
    while _END_OF_HEAD not in head and len(head) < _MAX_HEAD:
        chunk = sock.recv(_MAX_HEAD - len(head))
        if not chunk:
            break
        head += chunk
    return head


def is_upgrade(head: bytes) -> bool:
    """Whether an HTTP request's head asks for a WebSocket (``Upgrade: websocket``)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"upgrade" and b"websocket" in value.lower():
            return True
    return False


def serve(sock: socket.socket, head: bytes, adopt: Callable[[socket.socket, bytes], None]) -> None:
    """Answer the upgrade request in ``head`` (read from the blocking ``sock``) and, if it is Service Bus's,
    carry its AMQP to a connection ``adopt`` hands to the server loop, until either side closes."""
    ws = WSConnection(ConnectionType.SERVER)
    try:
        ws.receive_data(head)
        request = next((e for e in ws.events() if isinstance(e, Request)), None)
    except RemoteProtocolError as exc:
        _LOG.debug("refused a WebSocket upgrade: %s", exc)
        with contextlib.suppress(OSError, LocalProtocolError):
            sock.sendall(ws.send(exc.event_hint or RejectConnection(status_code=400)))
        sock.close()
        return
    if request is None or SUBPROTOCOL not in request.subprotocols:  # an incomplete head, or not AMQP
        _refuse(sock, ws, 400)
        return
    if request.target.partition("?")[0].lower() != PATH.lower():
        _refuse(sock, ws, 404)
        return
    sock.sendall(ws.send(AcceptConnection(subprotocol=SUBPROTOCOL)))
    loop_end, bridge_end = socket.socketpair()
    adopt(loop_end, b"")
    _Bridge(sock, bridge_end, ws).run()


def _refuse(sock: socket.socket, ws: WSConnection, status: int) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(ws.send(RejectConnection(status_code=status)))
    sock.close()


class _Bridge:
    """Bytes between a WebSocket (``client``) and the server loop's AMQP connection (``amqp``)."""

    def __init__(self, client: socket.socket, amqp: socket.socket, ws: WSConnection) -> None:
        self.client = client
        self.amqp = amqp
        self.ws = ws
        self.to_client = bytearray()
        self.to_amqp = bytearray()
        self.open = True  # both directions still carry; once False, what is buffered is flushed, then closed

    def run(self) -> None:
        self.client.setblocking(False)
        self.amqp.setblocking(False)
        try:
            with selectors.DefaultSelector() as selector:
                while self.open or self.to_client or self.to_amqp:
                    self._watch(selector, self.client, reading=self.open, writing=bool(self.to_client))
                    self._watch(selector, self.amqp, reading=self.open, writing=bool(self.to_amqp))
                    for key, _ in selector.select():
                        if key.fileobj is self.client:
                            self._from_client()
                        else:
                            self._from_amqp()
                    self._flush()
        except (OSError, LocalProtocolError, RemoteProtocolError) as exc:
            _LOG.debug("WebSocket connection ended: %s", exc)
        finally:
            self.client.close()
            self.amqp.close()

    @staticmethod
    def _watch(
        selector: selectors.BaseSelector, sock: socket.socket, *, reading: bool, writing: bool
    ) -> None:
        events = (selectors.EVENT_READ if reading else 0) | (selectors.EVENT_WRITE if writing else 0)
        registered = sock in selector.get_map()
        if events and registered:
            selector.modify(sock, events)
        elif events:
            selector.register(sock, events)
        elif registered:
            selector.unregister(sock)

    def _from_client(self) -> None:
        # Read until the socket has nothing more: an ssl socket may hold decrypted bytes select cannot see.
        while self.open:
            try:
                data = self.client.recv(_CHUNK)
            except _WOULD_BLOCK:
                return
            if not data:  # gone without a closing handshake: nothing more can be sent to it
                self.open = False
                self.to_client.clear()
                return
            self.ws.receive_data(data)
            self._events()

    def _events(self) -> None:
        for event in self.ws.events():
            if isinstance(event, BytesMessage):
                self.to_amqp += event.data
            elif isinstance(event, Ping):
                self.to_client += self.ws.send(event.response())
            elif isinstance(event, CloseConnection):
                self.to_client += self.ws.send(event.response())
                self.open = False
            elif isinstance(event, TextMessage):
                self.to_client += self.ws.send(CloseConnection(code=_UNSUPPORTED_DATA))
                self.open = False

    def _from_amqp(self) -> None:
        if not self.open:
            return
        try:
            data = self.amqp.recv(_CHUNK)
        except _WOULD_BLOCK:
            return
        if data:
            self.to_client += self.ws.send(Message(data=data))
        else:  # the server loop closed the connection
            self.to_client += self.ws.send(CloseConnection(code=_NORMAL_CLOSURE))
            self.open = False

    def _flush(self) -> None:
        for sock, buffer in ((self.client, self.to_client), (self.amqp, self.to_amqp)):
            while buffer:
                try:
                    sent = sock.send(buffer)
                except _WOULD_BLOCK:
                    break
                del buffer[:sent]
