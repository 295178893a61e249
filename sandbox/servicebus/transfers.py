"""Messages in and settlements back: transfers from clients' senders, dispositions from their receivers.

A send is accepted, and a settlement confirmed with the outcome the client asked for (the SDK settles in
receiver-settle-mode *second* and waits for that echo), only after the journal committed; a failure is
answered at once as ``rejected`` with the error the SDK maps to its exception.
"""

from __future__ import annotations

from collections.abc import Callable

from proton import Delivery, Link

from sandbox.servicebus.entity import Entity
from sandbox.servicebus.errors import AmqpDecodeError, BrokerError
from sandbox.servicebus.links import LinkConsumer, entity_address, outcome, reject, settle
from sandbox.servicebus.message import parse_message, split_batch
from sandbox.servicebus.requests import RequestNodes
from sandbox.servicebus.settlement import ServiceBus

__all__ = ["CREDIT", "Transfers"]

CREDIT = 1000
_MGMT = "/$management"
_SIZE_EXCEEDED = "amqp:link:message-size-exceeded"


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
        buffer: bytearray | None = getattr(delivery, "sb_buffer", None)
        if buffer is None:
            buffer = bytearray()
            delivery.sb_buffer = buffer
        while delivery.pending > 0:
            chunk = link.recv(delivery.pending)
            if not chunk:
                break
            buffer += chunk
        if delivery.partial:
            return
        link.advance()
        payload = bytes(buffer)
        delivery.sb_buffer = None
        if link.credit < CREDIT // 2:
            link.flow(CREDIT - link.credit)
        path = entity_address(link.remote_target.address)
        if path == "$cbs":
            self.requests.on_cbs(link, payload)
            settle(delivery, Delivery.ACCEPTED)
        elif path.endswith(_MGMT):
            self.requests.on_management(link, payload)
            settle(delivery, Delivery.ACCEPTED)
        else:
            self._on_send(link, delivery, payload)

    def _on_send(self, link: Link, delivery: Delivery, payload: bytes) -> None:
        refusal: BrokerError | None = getattr(link, "sb_refusal", None)
        if refusal is not None:
            reject(delivery, refusal.condition, refusal.description)
            return
        entity: Entity = link.sb_entity
        if len(payload) > self.bus.max_message_bytes:
            limit = self.bus.max_message_bytes
            reject(delivery, _SIZE_EXCEEDED, f"The message size exceeds the limit of {limit} bytes.")
            return
        try:
            parts = split_batch(payload)
            envs = [parse_message(raw) for raw in (parts if parts is not None else [payload])]
            # A batch is all or nothing: check every message before storing any.
            self.bus.check_sendable(entity.path, envs)
            for env in envs:
                self.bus.send(entity.path, env)
        except (BrokerError, AmqpDecodeError) as exc:
            condition = exc.condition if isinstance(exc, BrokerError) else "amqp:decode-error"
            reject(delivery, condition, str(exc))
            return
        self.after_commit(lambda: settle(delivery, Delivery.ACCEPTED))

    def on_disposition(self, link: Link, delivery: Delivery) -> None:
        """Apply a receiver's settlement; confirm it with the same outcome once committed."""
        token: bytes | None = getattr(delivery, "sb_token", None)
        consumer: LinkConsumer | None = getattr(link, "sb_consumer", None)
        if token is None or consumer is None:
            delivery.settle()
            return
        state = delivery.remote_state
        requested, reason, description = outcome(delivery)
        try:
            self.bus.settle(
                consumer.entity, token, requested, owner=consumer, reason=reason, description=description
            )
        except BrokerError as exc:
            reject(delivery, exc.condition, exc.description)
            return
        self.after_commit(lambda: settle(delivery, state))
