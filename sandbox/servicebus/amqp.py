"""Proton engine events turned into broker operations: CBS, entity links, transfers, dispositions, management.

The server loop feeds every connection's events here, then commits the journal and runs ``after_commit``:
sends are accepted and settlements confirmed only once they are durable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from proton import Connection, Delivery, Event, Link, symbol

from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.connections import ConnectionState, state_of
from dualbus.sandbox.servicebus.entity import Entity
from dualbus.sandbox.servicebus.errors import BrokerError
from dualbus.sandbox.servicebus.link_tokens import LinkTokens
from dualbus.sandbox.servicebus.links import (
    LinkConsumer,
    entity_address,
    open_echo,
    refuse_link,
    refuse_receiver,
    remote_timeout_ms,
    session_properties,
    source_filters,
)
from dualbus.sandbox.servicebus.receiver_kinds import check_receiver_kind
from dualbus.sandbox.servicebus.requests import RequestNodes
from dualbus.sandbox.servicebus.sas import LISTEN, SEND, KeyRing
from dualbus.sandbox.servicebus.transfers import Transfers

__all__ = ["AmqpHandler"]

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")
_CREDIT = 1000
_MGMT = "/$management"
_SESSION_FILTER = symbol("com.microsoft:session-filter")
_DEFAULT_SESSION_WAIT_MS = 60_000


class AmqpHandler:
    """Handles the proton events of every connection for one broker."""

    def __init__(self, bus: ServiceBus, keys: KeyRing) -> None:
        self.bus = bus
        self.keys = keys
        self.after_commit: list[Callable[[], None]] = []
        self.requests = RequestNodes(bus, keys, self.after_commit.append)
        self.tokens = LinkTokens(bus)
        self.transfers = Transfers(bus, self.requests, self.after_commit.append)
        self._handlers: dict[Any, Callable[[Event], None]] = {
            Event.CONNECTION_REMOTE_OPEN: self._on_connection_open,
            Event.SESSION_REMOTE_OPEN: lambda e: _need(e.session).open(),
            Event.LINK_REMOTE_OPEN: self._on_link_open,
            Event.LINK_FLOW: self._on_flow,
            Event.LINK_REMOTE_CLOSE: self._on_link_close,
            Event.LINK_REMOTE_DETACH: self._on_link_close,
            Event.SESSION_REMOTE_CLOSE: lambda e: _need(e.session).close(),
            Event.CONNECTION_REMOTE_CLOSE: self._on_connection_close,
            # The tail closes when the peer's socket does, while the transport is still bound (by the time
            # TRANSPORT_CLOSED arrives the server has unbound it and the event names no connection).
            Event.TRANSPORT_TAIL_CLOSED: self._on_transport_closed,
            Event.TRANSPORT_CLOSED: self._on_transport_closed,
        }

    @property
    def event_numbers(self) -> frozenset[int]:
        """The proton event type numbers ``handle`` acts on (DELIVERY goes to ``on_delivery``)."""
        return frozenset(event_type.number for event_type in self._handlers)

    def handle(self, event: Event) -> None:
        """Dispatch one proton event."""
        handler = self._handlers.get(event.type)
        if handler is not None:
            handler(event)

    # -- connections ---------------------------------------------------------------------------

    def _on_connection_open(self, event: Event) -> None:
        connection = _need(event.connection)
        connection.sb_state = ConnectionState()
        connection.container = "dualbus-servicebus-emulator"
        connection.open()

    def _on_connection_close(self, event: Event) -> None:
        connection = _need(event.connection)
        self.connection_lost(connection)
        connection.close()

    def _on_transport_closed(self, event: Event) -> None:
        if event.connection is not None:
            self.connection_lost(event.connection)

    def connection_lost(self, connection: Connection) -> None:
        """Free what a closed or dropped connection held (the server calls this before unbinding it)."""
        state = state_of(connection)
        if state is not None:
            state.lose(self.bus)

    # -- links ---------------------------------------------------------------------------------

    def _on_link_open(self, event: Event) -> None:
        link = _need(event.link)
        address = link.remote_target.address if link.is_receiver else link.remote_source.address
        path = entity_address(address)
        if path == "$cbs":
            self._open_request_link(link)
            return
        node = path.removesuffix(_MGMT) if path.endswith(_MGMT) else None
        try:
            entity = self.bus.entity(node if node is not None else path)
            # A token for the node itself (the JavaScript SDK asks for sb://host/<entity>/$management)
            # covers it, as one for the entity does.
            # Sending into an entity needs Send, receiving from it Listen; a $management operation is
            # checked for its own right when it comes (RequestNodes.on_management).
            right = None if node is not None else SEND if link.is_receiver else LISTEN
            self.tokens.authorize(link, entity.path if node is None else entity.path + _MGMT, right)
            _check_receivable(link, entity, node)
        except BrokerError as exc:
            self._refuse(link, exc)
            return
        if node is not None or link.is_receiver:
            link.sb_entity = entity
            if node is not None:
                _need(state_of(link)).entities.add(entity)  # a $management receive may lock messages
            self._open_request_link(link)
        else:
            self._attach_consumer(link, entity)

    def _refuse(self, link: Link, error: BrokerError) -> None:
        if link.is_sender or link.remote_target.address is None:
            refuse_link(link, error.condition, error.description)
            return
        # A refused sender would race our detach with its first transfer and report a lost connection;
        # keeping the link and rejecting the transfer makes the SDK raise the error itself (not found...).
        link.sb_refusal = error
        self._open_request_link(link)

    def _open_request_link(self, link: Link) -> None:
        # Senders size their batches from this vendor property (the SDK prefers it to max-message-size).
        limit = {"com.microsoft:max-message-batch-size": self.bus.max_message_bytes}
        if link.is_receiver:
            # Azure advertises its per-message limit on attach (262,144 bytes on Standard); transfers are
            # measured against this very number (see Transfers.on_transfer).
            link.max_message_size = self.bus.max_message_bytes
        open_echo(link, limit if link.is_receiver else None)
        if link.is_receiver:
            link.flow(_CREDIT)
            return
        self.requests.register_reply_link(link)

    def _attach_consumer(self, link: Link, entity: Entity) -> None:
        peek_lock = link.remote_snd_settle_mode != Link.SND_SETTLED
        filters = source_filters(link)
        wants_session = _SESSION_FILTER in filters
        try:
            check_receiver_kind(entity, wants_session=wants_session)
        except BrokerError as exc:
            refuse_receiver(link, exc.condition, exc.description)
            return
        consumer = LinkConsumer(link, entity, peek_lock=peek_lock)
        link.sb_consumer = consumer
        # Counted from the attach, not from delivery: a receiver still waiting for a session must stop
        # waiting if its connection goes, or it would be handed a session nobody can use.
        _need(state_of(link)).add_consumer(consumer)
        if not wants_session:
            open_echo(link)
            self._register(consumer)
            return
        requested = filters.get(_SESSION_FILTER)
        if requested is not None:
            self._open_session(consumer, str(requested))
            return
        timeout = remote_timeout_ms(link, _DEFAULT_SESSION_WAIT_MS)
        deadline = self.bus.now_ms() + timeout

        def assigned(session_id: str | None, until_ms: int) -> None:
            if session_id is None:
                refuse_receiver(link, "com.microsoft:timeout", "No session became available in time.")
                return
            consumer.session_id = session_id
            self._finish_session_open(consumer, until_ms)

        self.bus.sessions.wait_for_session(entity, consumer, deadline, assigned)

    def _open_session(self, consumer: LinkConsumer, session_id: str) -> None:
        try:
            until = self.bus.sessions.accept_session(consumer.entity, consumer, session_id)
        except BrokerError as exc:
            # As Azure refuses it: an attach with a null source, then the detach with the error. The
            # JavaScript SDK reads the missing session filter as SessionCannotBeLocked; an echoed source
            # would tell it the session was granted.
            refuse_receiver(consumer.link, exc.condition, exc.description)
            return
        consumer.session_id = session_id
        self._finish_session_open(consumer, until)

    def _finish_session_open(self, consumer: LinkConsumer, until_ms: int) -> None:
        link = consumer.link
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        # The SDK learns which session it got from the filter we send back.
        link.source.filter.clear()
        link.source.filter.put_map()
        link.source.filter.enter()
        link.source.filter.put_symbol(_SESSION_FILTER)
        link.source.filter.put_string(consumer.session_id or "")
        link.source.filter.exit()
        link.properties = {symbol(k): v for k, v in session_properties(until_ms).items()}
        link.open()
        self._register(consumer)

    def _register(self, consumer: LinkConsumer) -> None:
        consumer.entity.consumers.append(consumer)
        self.bus.delivery.dispatch(consumer.entity, consumer.session_id)

    def _on_link_close(self, event: Event) -> None:
        link = _need(event.link)
        self.tokens.forget(link)
        consumer: LinkConsumer | None = getattr(link, "sb_consumer", None)
        state = state_of(link)
        if consumer is not None and state is not None:
            state.link_closed(self.bus, consumer)
        if link.state & Link.LOCAL_ACTIVE:
            link.close()

    def _on_flow(self, event: Event) -> None:
        link = _need(event.link)
        consumer: LinkConsumer | None = getattr(link, "sb_consumer", None)
        if consumer is not None and not consumer.closed:
            self.bus.delivery.dispatch(consumer.entity, consumer.session_id)
        if link.is_sender and link.drain_mode:
            # A draining receiver waits for its credit back before it releases what it prefetched.
            link.drained()

    # -- deliveries ----------------------------------------------------------------------------

    def on_delivery(self, delivery: Delivery) -> None:
        """A transfer arrived or a receiver settled: the loop calls this for every DELIVERY event, with the
        delivery alone (wrapping the whole Event would cost a settlement a third more)."""
        consumer: LinkConsumer | None = getattr(delivery, "sb_consumer", None)
        if consumer is not None:  # a peek-lock delivery of ours: the client settled it
            if delivery.updated:
                self.transfers.on_disposition(consumer, delivery)
            return
        link = delivery.link
        if link.is_receiver:
            self.transfers.on_transfer(link, delivery)
        elif delivery.updated:
            delivery.settle()  # settled on sending: nothing more to apply


def _need(value: _T | None) -> _T:
    """Narrow an event attribute proton types as optional but always sets for that event type."""
    if value is None:
        raise BrokerError("amqp:internal-error", "a proton event lacked its endpoint")
    return value


def _check_receivable(link: Link, entity: Entity, node: str | None) -> None:
    if entity.is_topic and node is None and link.is_sender:
        raise BrokerError(
            "amqp:not-allowed", f"Receive from a subscription of '{entity.path}', not the topic."
        )
