"""Messages found by sequence number instead of delivered in turn: peek and deferred receive."""

from __future__ import annotations

from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.delivery import payload
from dualbus.sandbox.servicebus.entity import DEFERRED, Entity, StoredMessage
from dualbus.sandbox.servicebus.errors import BrokerError

__all__ = ["MESSAGE_NOT_FOUND", "peek", "receive_deferred"]

MESSAGE_NOT_FOUND = "com.microsoft:message-not-found"


def receive_deferred(
    bus: ServiceBus,
    entity: Entity,
    numbers: list[int],
    *,
    peek_lock: bool,
    session_id: str | None,
    holder: object | None = None,
) -> list[tuple[bytes, bytes | None]]:
    """Deferred messages by sequence number as (payload, lock token), locked for ``holder``.

    Unknown numbers are an error, and nothing is locked or removed then.
    """
    found = [_deferred(entity, seq, session_id) for seq in numbers]
    now = bus.now_ms()
    out: list[tuple[bytes, bytes | None]] = []
    for message in found:
        if peek_lock:
            token = bus.settlement.lock(entity, message, holder, now)
            out.append((payload(message, message.locked_until_ms), token))
        else:
            entity.remove(message.seq)
            bus.journal.delete(entity.path, message.seq)
            out.append((payload(message, None), None))
    return out


def _deferred(entity: Entity, seq: int, session_id: str | None) -> StoredMessage:
    message = entity.messages.get(seq)
    if message is None or message.state != DEFERRED or message.lock_token is not None:
        raise BrokerError(
            MESSAGE_NOT_FOUND, f"Failed to lock one or more specified messages: {seq}.", status=404
        )
    if session_id is not None and message.env.session_id != session_id:
        raise BrokerError(MESSAGE_NOT_FOUND, f"Message {seq} is not in session {session_id}.", status=404)
    return message


def peek(bus: ServiceBus, entity: Entity, from_seq: int, count: int, session_id: str | None) -> list[bytes]:
    """Up to ``count`` messages from ``from_seq`` on, without locking (active, deferred, scheduled)."""
    now = bus.now_ms()
    out = []
    for message in entity.in_order(from_seq, session_id):
        if message.expires_ms is not None and message.expires_ms <= now:
            continue
        out.append(payload(message, message.locked_until_ms if message.lock_token else None))
        if len(out) >= count:
            break
    return out
