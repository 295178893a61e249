"""Messages in and settlements back: transfers from clients' senders, dispositions from their receivers.

A send is accepted, and a settlement confirmed with the outcome the client asked for (the SDK settles in
receiver-settle-mode *second* and waits for that echo), only after the journal committed; a failure is
answered at once as ``rejected`` with the error the SDK maps to its exception, as is a transfer or settlement
on a link whose token expired (``link_tokens.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from proton import Delivery, Link

from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.entity import Entity
from dualbus.sandbox.servicebus.errors import AmqpDecodeError, BrokerError
from dualbus.sandbox.servicebus.frames import ClientFrames
from dualbus.sandbox.servicebus.link_tokens import check_token
from dualbus.sandbox.servicebus.links import LinkConsumer, entity_address, outcome, reject, settle
from dualbus.sandbox.servicebus.message import parse_message, split_batch, stamp_message_id
from dualbus.sandbox.servicebus.requests import RequestNodes

__all__ = ["CREDIT", "Transfers"]

CREDIT = 1000
_MGMT = "/$management"
_SIZE_EXCEEDED = "amqp:link:message-size-exceeded"
_UNLIMITED = 2**63


class Transfers:
    """Handles deliveries for one broker."""

    def __init__(
        self, bus: ServiceBus, requests: RequestNodes, after_commit: Callable[[Callable[[], None]], None]
    ) -> None:
        self.bus = bus
        self.requests = requests
        self.after_commit = after_commit

    def on_transfer(self, link: Link, delivery: Delivery) -> None:
        """Read a (possibly multi-frame) transfer and hand the message to its node or entity."""
        if not delivery.readable:
            # An event for a delivery that is not the link's current one (already read and advanced, or
            # only its state changed): reading now would take the *next* delivery's bytes, or advance past
            # it unread, so a later message would be glued to this one's remains.
            return
        received = _Received.of(delivery, link)
        received.read(link, delivery.pending, _size_limit(link))
        if delivery.partial:
            return
        link.advance()
        delivery.sb_received = None
        if link.credit < CREDIT // 2:
            link.flow(CREDIT - link.credit)
        path = entity_address(link.remote_target.address)
        if path == "$cbs":
            self.requests.on_cbs(link, bytes(received.buffer))
            settle(delivery, Delivery.ACCEPTED)
        elif path.endswith(_MGMT):
            self.requests.on_management(link, bytes(received.buffer))
            settle(delivery, Delivery.ACCEPTED)
        elif received.size > _size_limit(link):
            self._refuse_size(link, delivery)
        else:
            self._on_send(link, delivery, bytes(received.buffer), received.message_format)

    def _refuse_size(self, link: Link, delivery: Delivery) -> None:
        refusal: BrokerError | None = getattr(link, "sb_refusal", None)
        if refusal is not None:
            reject(delivery, refusal.condition, refusal.description)
            return
        limit = _size_limit(link)
        reject(delivery, _SIZE_EXCEEDED, f"The message size exceeds the limit of {limit} bytes.")

    def _on_send(self, link: Link, delivery: Delivery, payload: bytes, message_format: int | None) -> None:
        refusal: BrokerError | None = getattr(link, "sb_refusal", None)
        if refusal is not None:
            reject(delivery, refusal.condition, refusal.description)
            return
        entity: Entity = link.sb_entity
        try:
            check_token(link, self.bus.now_ms())
            parts = split_batch(payload, message_format)
            raws = parts if parts is not None else [payload]
            envs = [stamp_message_id(parse_message(raw)) for raw in raws]
            # A batch is all or nothing: check every message before storing any.
            self.bus.intake.check_sendable(entity.path, envs)
            for env in envs:
                self.bus.intake.send(entity.path, env)
        except (BrokerError, AmqpDecodeError) as exc:
            condition = exc.condition if isinstance(exc, BrokerError) else "amqp:decode-error"
            reject(delivery, condition, str(exc))
            return
        self.after_commit(lambda: settle(delivery, Delivery.ACCEPTED))

    def on_disposition(self, consumer: LinkConsumer, delivery: Delivery) -> None:
        """Apply a receiver's settlement of a peek-lock delivery; confirm the outcome once committed."""
        token: bytes = delivery.sb_token
        state = delivery.remote_state
        requested, reason, description = outcome(delivery)
        try:
            check_token(consumer.link, self.bus.now_ms())
            self.bus.settlement.settle(
                consumer.entity, token, requested, owner=consumer, reason=reason, description=description
            )
        except BrokerError as exc:
            reject(delivery, exc.condition, exc.description)
            return
        self.after_commit(lambda: settle(delivery, state))


class _Received:
    """The bytes of one incoming delivery so far, kept on the delivery until its last frame arrives."""

    def __init__(self, message_format: int | None) -> None:
        self.buffer = bytearray()
        self.size = 0
        self.message_format = message_format

    @classmethod
    def of(cls, delivery: Delivery, link: Link) -> _Received:
        found: _Received | None = getattr(delivery, "sb_received", None)
        if found is None:
            # Deliveries on a link arrive in order, so its first frame's format is the next one read.
            formats: ClientFrames | None = getattr(link.connection, "sb_formats", None)
            found = cls(formats.next_format(link.name) if formats is not None else None)
            delivery.sb_received = found
        return found

    def read(self, link: Link, pending: int, limit: int) -> None:
        """Take what has arrived; past ``limit`` only count it, since the message will be refused whole."""
        while pending > 0:
            chunk = link.recv(pending)
            if not chunk:
                return
            pending -= len(chunk)
            self.size += len(chunk)
            if self.size <= limit:
                self.buffer += chunk


def _size_limit(link: Link) -> int:
    """The max-message-size this link advertised on attach: Azure measures a transfer against it.

    For a batch that is the batch message's own encoded size, envelope included, which the SDK's
    ServiceBusMessageBatch estimates from the same limit (``com.microsoft:max-message-batch-size``).
    """
    return int(link.max_message_size) or _UNLIMITED
