"""The emulator's network loop: one thread, non-blocking sockets, proton's engine without its reactor.

Each pass reads what the sockets have, lets proton turn the bytes into events, runs the broker on them,
commits the journal once for the whole pass, confirms what was committed, and writes proton's output.
One commit per pass is what keeps persistence fast: a burst of sends or completions is one transaction.

One port serves AMQP, AMQP over TLS (what ``ServiceBusClient(namespace, credential)`` always speaks), and
the administration API over HTTPS or HTTP. A connection opening with a TLS handshake goes to the
administration gateway's thread, which completes the handshake and hands an AMQP one back here: the loop
then reads and writes it through the non-blocking ``ssl`` socket. AMQP over WebSockets (an HTTP upgrade,
with TLS or without) comes back the same way, as one end of a socket pair the gateway's thread bridges
(``websocket.py``). The certificate is issued by the sandbox CA (``sandbox/tls.py``) for the loopback
names.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import queue
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

import cproton
from proton import Collector, Connection, Delivery, Event, Transport
from pydantic import SecretStr

from dualbus.sandbox.identity import TokenIssuer
from dualbus.sandbox.servicebus.activity import Activity
from dualbus.sandbox.servicebus.admin import HTTP_METHOD_STARTS, AdminApi, AdminGateway
from dualbus.sandbox.servicebus.amqp import AmqpHandler
from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.catalog import Catalog
from dualbus.sandbox.servicebus.config import EmulatorConfig, default_config
from dualbus.sandbox.servicebus.errors import EmulatorStartError
from dualbus.sandbox.servicebus.frames import ClientFrames
from dualbus.sandbox.servicebus.sas import KeyRing, key_rights_from_env, keys_from_env
from dualbus.sandbox.servicebus.store import Journal, MemoryJournal, SqliteJournal
from dualbus.sandbox.servicebus.topology import build_topology
from dualbus.sandbox.tls import LOOPBACK_NAMES, TlsFiles, loopback_certificate

__all__ = ["EmulatorServer"]

_LOG = logging.getLogger(__name__)
_READ_CHUNK = 256 * 1024
_MAX_WAIT_S = 1.0
_MAX_FRAME = 1024 * 1024
_DELIVERY: int = Event.DELIVERY.number
_TRANSPORT: int = Event.TRANSPORT.number
# proton leaves Delivery.wrap unannotated; it returns None for a null handle.
_wrap_delivery: Callable[[object], Delivery | None] = Delivery.wrap
# What a non-blocking socket raises when it cannot go on now; an ssl socket may need either direction.
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    transport: Transport
    connection: Connection
    frames: ClientFrames | None  # None once reading them failed: the stream's place is lost
    want_write: bool = False
    fresh: bool = True  # nothing read yet: the first byte tells AMQP from TLS (administration API)


class EmulatorServer:
    """A Service Bus emulator bound to ``host:port`` (port 0 picks a free one) until ``close``."""

    def __init__(
        self,
        *,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: pathlib.Path | None = None,
        keys: Mapping[str, SecretStr] | None = None,
        key_rights: Mapping[str, Collection[str]] | None = None,
        max_message_bytes: int = 256 * 1024,
        clock: Callable[[], float] = time.time,
        entra: TokenIssuer | None = None,
        tls: TlsFiles | None = None,
        amqps_port: int | None = None,
    ) -> None:
        # ``clock`` is the broker's time (seconds): locks, TTLs, schedules, dedup windows, SAS token expiry
        # and the loop's wake-ups all read it, so a test can move it instead of waiting. Proton's idle ticks
        # keep wall time, as the token issuer's check of an Entra ID token's expiry does.
        self.keys = dict(keys) if keys is not None else keys_from_env()
        # Each key's rights (sandbox/servicebus/sas.py): all three unless named here or in the environment.
        # Read from the environment only with its keys: rights there must not change keys given here.
        from_env = key_rights_from_env() if keys is None else {}
        self.key_rights = dict(key_rights) if key_rights is not None else from_env
        # The certificate for TLS (made here unless given; then removed at shutdown with the server).
        self._own_tls = tls is None
        names = LOOPBACK_NAMES if host in LOOPBACK_NAMES else (*LOOPBACK_NAMES, host)
        self.tls = tls or loopback_certificate(names)
        config = config or default_config()
        topology = build_topology(config)
        self.journal: Journal = SqliteJournal(data_dir) if data_dir is not None else MemoryJournal()
        self.bus = ServiceBus(
            topology.entities, topology.routes, self.journal, clock=clock, max_message_bytes=max_message_bytes
        )
        self.catalog = Catalog(self.bus, self.journal, config, clock=clock)
        self._restore()
        key_ring = KeyRing(self.keys, clock=clock, entra=entra, rights=self.key_rights)
        self.handler = AmqpHandler(self.bus, key_ring)
        # Rule operations on a subscription's $management node change the same definitions.
        self.handler.requests.management.catalog = self.catalog
        api = AdminApi(self.catalog, config.namespaces[0].name)
        self.admin = AdminGateway(key_ring, self.call_on_loop, lambda: api, tls=self.tls, amqp=self._adopt)
        self._calls: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] = queue.SimpleQueue()
        self._collector = Collector()
        self._wanted = self.handler.event_numbers
        self._selector = selectors.DefaultSelector()
        self._clients: dict[socket.socket, _Client] = {}
        # Each client by its transport's C handle, as proton's TRANSPORT events name it.
        self._by_transport: dict[object, _Client] = {}
        self._activity: Activity[_Client] = Activity()
        # AMQP over TLS: the ssl layer may hold decrypted bytes the selector cannot see.
        self._tls_clients: set[_Client] = set()
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        # The SDK's TLS client always connects to port 5671 (the port of "host:port" is used for plain AMQP
        # only: azure/servicebus/_pyamqp/_connection.py); ``amqps_port`` adds a listener for it.
        ports = [port] if amqps_port is None else [port, amqps_port]
        self._listeners: list[socket.socket] = []
        for each in ports:
            try:
                listener = socket.create_server((host, each), backlog=128)
            except OSError as exc:
                for opened in self._listeners:
                    opened.close()
                self.journal.close()
                if self._own_tls:
                    self.tls.remove()
                raise EmulatorStartError(f"cannot listen on {host}:{each}: {exc}") from exc
            listener.setblocking(False)
            self._listeners.append(listener)
            self._selector.register(listener, selectors.EVENT_READ, "listen")
        self.host, self.port = self._listeners[0].getsockname()[:2]
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")

    @property
    def connection_string(self) -> str:
        """What a Service Bus SDK needs to reach this emulator (the first configured key)."""
        name, key = next(iter(self.keys.items()))
        return (
            f"Endpoint=sb://{self.host}:{self.port};SharedAccessKeyName={name};"
            f"SharedAccessKey={key.get_secret_value()};UseDevelopmentEmulator=true"
        )

    def _restore(self) -> None:
        state = self.journal.load(self.bus.now_ms())
        self.catalog.restore(state.entity_documents)
        self.bus.next_seq = state.next_seq
        orphaned: dict[str, int] = {}
        for path, message in state.messages:
            if not self.bus.restore(path, message):
                orphaned[path] = orphaned.get(path, 0) + 1
        for path, count in orphaned.items():
            # Kept on disk, not served: putting the entity back in the configuration brings them back.
            _LOG.warning(
                "%d stored messages belong to '%s', which the configuration no longer has", count, path
            )
        now = self.bus.now_ms()
        for path, message_id, expires in state.dedup:
            if expires > now:
                self.bus.intake.remember_dedup(path, message_id, expires)
        for path, session_id, blob in state.session_state:
            entity = self.bus.entities.get(path)
            if entity is not None:
                entity.session_state[session_id] = blob

    # -- lifecycle -----------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Run until ``stop`` is called (from any thread or a signal handler)."""
        try:
            while not self._stopping.is_set():
                self._pass()
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Ask the loop to finish its pass, commit and close; safe from other threads."""
        self._stopping.set()
        with contextlib.suppress(OSError):  # already closed: the loop is gone
            self._wake_w.send(b"x")

    def _shutdown(self) -> None:
        for client in list(self._clients.values()):
            self._drop(client)
        self.journal.close()
        if self._own_tls:
            self.tls.remove()
        self._selector.close()
        for listener in self._listeners:
            listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- one pass ------------------------------------------------------------------------------

    def _pass(self) -> None:
        # Decrypted bytes the ssl layer holds are read now, while proton can take them (else the loop spins).
        buffered = [
            c
            for c in self._tls_clients
            if isinstance(c.sock, ssl.SSLSocket) and c.sock.pending() and c.transport.capacity() > 0
        ]
        ready = self._selector.select(0 if buffered else self._wait_seconds())
        if not ready and not buffered:
            self.journal.idle()
        for each in buffered:
            self._read(each)
        for key, events in ready:
            if key.data == "listen":
                self._accept(key.fileobj)  # type: ignore[arg-type] # a listener registered as a socket
            elif key.data == "wake":
                self._drain_wake()
                self._run_calls()
            else:
                client: _Client = key.data
                if events & selectors.EVENT_WRITE:
                    self._activity.active(client)
                if events & selectors.EVENT_READ:
                    self._read(client)
        self._process()
        now_ms = self.bus.now_ms()
        deadline = self.bus.next_deadline_ms()
        if deadline is not None and deadline <= now_ms:
            self.bus.timers(now_ms)
            self._process()
        self.journal.flush()
        callbacks = list(self.handler.after_commit)
        self.handler.after_commit.clear()  # cleared in place: the request nodes hold a reference to it
        for callback in callbacks:
            callback()
        self._process()
        for client in self._activity.take_output():
            self._write(client)

    def _wait_seconds(self) -> float:
        wait = _MAX_WAIT_S
        deadline = self.bus.next_deadline_ms()
        if deadline is not None:
            wait = min(wait, max(0.0, (deadline - self.bus.now_ms()) / 1000))
        now = time.time()
        tick = self._activity.tick(
            now, lambda client, at: client.transport.tick(at), lambda client: client.transport.pending()
        )
        if tick is not None:
            wait = min(wait, max(0.0, tick - now))
        # Output made since the last writes (a drop's last events, a tick's keep-alive) goes out at once.
        return 0.0 if self._activity.has_output else wait

    def _process(self) -> None:
        # Proton's Collector.peek wraps every event in Python objects, the final empty peek included; most
        # events (one TRANSPORT per frame written) concern no handler. Reading the type from the C event
        # first and wrapping only the wanted ones takes a third off the loop's cost per settlement.
        # A DELIVERY event, one per transfer or settlement, needs only its delivery: wrapping that alone
        # spares the link, session, connection and transport wrappers an Event builds.
        collector = self._collector
        impl = collector._impl  # noqa: SLF001 - proton's own handle on the C collector
        wanted = self._wanted
        while not cproton.isnull(raw := cproton.pn_collector_peek(impl)):
            number = cproton.pn_event_type(raw)
            try:
                if number == _TRANSPORT:
                    self._announce(cproton.pn_event_transport(raw))
                elif number == _DELIVERY:
                    delivery = _wrap_delivery(cproton.pn_event_delivery(raw))
                    if delivery is not None:
                        self.handler.on_delivery(delivery)
                elif number in wanted and (event := collector.peek()) is not None:
                    self.handler.handle(event)
            except Exception:  # a bug on one frame must not take the emulator down  # noqa: BLE001
                _LOG.exception("failed to handle %s", cproton.pn_event_type_name(number))
            cproton.pn_collector_pop(impl)

    def _announce(self, transport: object) -> None:
        client = self._by_transport.get(transport)
        if client is not None:
            self._activity.announced(client)

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._attach(sock)

    def _attach(self, sock: socket.socket) -> _Client:
        connection = Connection()
        connection.collect(self._collector)
        # Proton keeps each transfer's message format to itself; the transfer handler reads it here. Proton
        # reads the client's bytes through it (delivery-ids renumbered where a client broke the sequence).
        frames = ClientFrames()
        connection.sb_formats = frames
        transport = Transport(Transport.SERVER)
        # Large frames let a 256 KiB batch travel in one frame instead of eight (proton's default is 32 KiB).
        transport.max_frame_size = _MAX_FRAME
        # The SDK offers SASL ANONYMOUS and authenticates afterwards with CBS tokens.
        transport.sasl().allowed_mechs("ANONYMOUS")
        transport.bind(connection)
        client = _Client(sock, transport, connection, frames)
        self._clients[sock] = client
        self._by_transport[transport._impl] = client  # noqa: SLF001 - proton's own handle, as events name it
        self._activity.joined(client)
        self._selector.register(sock, selectors.EVENT_READ, client)
        return client

    def _forget(self, client: _Client) -> None:
        self._clients.pop(client.sock, None)
        self._by_transport.pop(client.transport._impl, None)  # noqa: SLF001 - see _attach
        self._activity.left(client)

    def _adopt(self, sock: socket.socket, start: bytes) -> None:
        """Serve an AMQP connection the gateway recognised (called on its thread): AMQP over TLS once the
        handshake is done, with the ``start`` bytes it read, or one end of a WebSocket bridge."""
        sock.setblocking(False)

        def adopt() -> None:
            client = self._attach(sock)
            client.fresh = False
            if isinstance(sock, ssl.SSLSocket):
                self._tls_clients.add(client)
            if start:
                self._take(client, start)

        self._calls.put((adopt, Future()))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"c")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(64):
                pass
        except BlockingIOError:
            return

    def run_timers(self) -> None:
        """Apply every time-driven rule due by the broker's clock now, on the loop, and return once done.

        For a caller that moved the clock: what expired is expired (and committed) when this returns.
        """
        self.call_on_loop(lambda: self.bus.timers(self.bus.now_ms()))

    def call_on_loop(self, call: Callable[[], object]) -> object:
        """Run ``call`` on the loop's thread, where the broker lives, and return its result once what it
        changed is committed (called from an administration thread)."""
        future: Future[object] = Future()
        self._calls.put((call, future))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"c")
        return future.result(timeout=10)

    def _run_calls(self) -> None:
        while True:
            try:
                call, future = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                result = call()
                self.journal.flush()
                future.set_result(result)
            except Exception as exc:  # handed to the calling thread, which raises it  # noqa: BLE001
                future.set_exception(exc)

    def _is_http(self, client: _Client) -> bool:
        """Hand a connection opening with TLS (0x16) or an HTTP method to the administration API."""
        client.fresh = False
        try:
            first = client.sock.recv(1, socket.MSG_PEEK)
        except OSError:
            return False
        if first != b"\x16" and (not first or first[0] not in HTTP_METHOD_STARTS):
            return False
        self._forget(client)
        self._selector.unregister(client.sock)
        client.transport.unbind()
        self.admin.serve(client.sock, tls=first == b"\x16")
        return True

    def _read(self, client: _Client) -> None:
        if client.fresh and self._is_http(client):
            return
        capacity = client.transport.capacity()
        if capacity <= 0:
            self._activity.active(client)  # its input closed or full: the write decides what comes next
            return
        try:
            data = client.sock.recv(min(capacity, _READ_CHUNK))
        except _WOULD_BLOCK:
            return
        except OSError:
            data = b""
        self._take(client, data)

    def _take(self, client: _Client, data: bytes) -> None:
        self._activity.active(client)
        if not data:
            client.transport.close_tail()
            return
        if client.frames is not None:
            data = self._read_frames(client, client.frames, data)
        transport = client.transport
        # What the frames give back may outgrow what was read (a frame start held back from the last read,
        # a renumbered delivery-id encoded longer), so it goes in as proton makes room; proton's buffer
        # grows to the frame size limit when a frame needs it.
        while data:
            room = transport.capacity()
            if room <= 0:
                return  # the transport is closed: its remaining input is of no use
            transport.push(data[:room])
            data = data[room:]

    def _read_frames(self, client: _Client, frames: ClientFrames, data: bytes) -> bytes:
        held = frames.held
        try:
            return frames.feed(data)
        except Exception:  # a bug here must not take the loop down  # noqa: BLE001
            # Without formats the transfer handler tells batches by their shape; proton reads as sent.
            _LOG.exception("stopped reading frames on a connection")
            client.frames = None
            client.connection.sb_formats = None
            return held + data

    def _write(self, client: _Client) -> None:
        transport = client.transport
        while (pending := transport.pending()) > 0:
            chunk = transport.peek(pending)
            if not chunk:
                break
            try:
                sent = client.sock.send(chunk)
            except _WOULD_BLOCK:
                self._want_write(client, want=True)
                return
            except OSError:
                transport.close_head()
                pending = transport.pending()
                break
            transport.pop(sent)
            self._activity.written(client)
        self._want_write(client, want=False)
        if pending < 0 and transport.capacity() < 0:
            self._drop(client)
        elif pending < 0:
            transport.close_tail()
            self._activity.active(client)  # written again in the next pass, which drops it

    def _want_write(self, client: _Client, *, want: bool) -> None:
        if client.want_write != want and client.sock in self._clients:
            client.want_write = want
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
            self._selector.modify(client.sock, events, client)

    def _drop(self, client: _Client) -> None:
        if client.sock not in self._clients:
            return
        self._forget(client)
        self._tls_clients.discard(client)
        self._selector.unregister(client.sock)
        client.sock.close()
        # Before unbinding: afterwards proton's events no longer name the connection, whose locks would
        # then stay held until they expired.
        self.handler.connection_lost(client.connection)
        client.transport.unbind()
        self._process()
