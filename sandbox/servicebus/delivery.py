"""Handing ready messages to receivers with credit, in sequence order, round robin."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dualbus.sandbox.servicebus.entity import ACTIVE, Consumer, Entity, StoredMessage
from dualbus.sandbox.servicebus.outgoing import compose

if TYPE_CHECKING:
    from dualbus.sandbox.servicebus.bus import ServiceBus

__all__ = ["Delivery"]


class Delivery:
    """Feeds each entity's ready messages to its consumers (a session's only to its lock holder)."""

    def __init__(self, bus: ServiceBus) -> None:
        self._bus = bus

    def dispatch(self, entity: Entity, session_id: str | None) -> None:
        """Hand ready messages to consumers with credit, in sequence order, round robin."""
        if entity.sessionful:
            lock = entity.session_locks.get(session_id or "")
            if lock is not None and lock.until_ms > self._bus.now_ms():
                self._feed(entity, [lock.owner], session_id)
            self._bus.sessions.on_session_ready(entity)
            return
        self._feed(entity, entity.consumers, None)

    def _feed(self, entity: Entity, consumers: list[Consumer], session_id: str | None) -> None:
        if not consumers or not entity.has_ready(session_id):
            return
        now = self._bus.now_ms()
        expired = self._expirer(entity)
        idle = 0
        index = 0
        while idle < len(consumers):
            consumer = consumers[index % len(consumers)]
            index += 1
            if consumer.credit() <= 0:
                idle += 1
                continue
            message = entity.next_ready(session_id, now, expired)
            if message is None:
                return
            idle = 0
            self._hand_out(entity, consumer, message, now)

    def _expirer(self, entity: Entity) -> Callable[[StoredMessage], None]:
        placement = self._bus.placement

        def on_expired(message: StoredMessage) -> None:
            placement.expire(entity, message)

        return on_expired

    def _hand_out(self, entity: Entity, consumer: Consumer, message: StoredMessage, now: int) -> None:
        """Deliver one message: lock it (peek-lock) or remove it (receive-and-delete)."""
        entity.accessed_at_ms = now
        if not consumer.peek_lock:
            entity.remove(message.seq)
            self._bus.journal.delete(entity.path, message.seq)
            consumer.deliver(message, payload(message, None), None)
            return
        token = self._bus.settlement.lock(entity, message, consumer, now)
        consumer.deliver(message, payload(message, message.locked_until_ms), token)


def payload(message: StoredMessage, locked_until_ms: int | None) -> bytes:
    """The encoded message as a receiver gets it."""
    extra: list[tuple[str, object]] = []
    if message.state != ACTIVE:
        extra.append(("x-opt-message-state", message.state))
    return compose(
        message.env,
        sequence_number=message.seq,
        enqueued_ms=message.enqueued_ms,
        delivery_count=message.delivery_count,
        locked_until_ms=locked_until_ms,
        extra=extra,
    )
