"""Message locks and settlement.

Locking a delivered message, complete, abandon, defer, dead-letter and release by lock token; lock renewal
and expiry (which counts as a failed delivery, as in Azure); MaxDeliveryCountExceeded; releasing what a
departed receiver held. Session locks are in ``sessions.py``; peek and deferred receive in ``lookup.py``.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Container
from typing import TYPE_CHECKING

from dualbus.sandbox.servicebus.entity import ACTIVE, DEFERRED, Entity, StoredMessage
from dualbus.sandbox.servicebus.errors import BrokerError

if TYPE_CHECKING:
    from dualbus.sandbox.servicebus.bus import ServiceBus

__all__ = [
    "ABANDON",
    "COMPLETE",
    "DEAD_LETTER",
    "DEFER",
    "LOCK_LOST",
    "RELEASE",
    "SESSION_LOCK_LOST",
    "Settlement",
]

COMPLETE, ABANDON, DEFER, DEAD_LETTER, RELEASE = "complete", "abandon", "defer", "dead-letter", "release"
LOCK_LOST = "com.microsoft:message-lock-lost"
# The condition the SDK maps to SessionLockLostError (ERROR_CODE_SESSION_LOCK_LOST in
# https://github.com/Azure/azure-sdk-for-python/blob/283734c5e40da90844881e064e0e5238359eccd6/sdk/servicebus/azure-servicebus/azure/servicebus/_common/constants.py),
# which a session receiver gets for any operation on its session once its lock expired:
# https://github.com/Azure/azure-sdk-for-java/blob/5295f3c4253ee514d4b497f53dd8d203d5fc2360/sdk/servicebus/microsoft-azure-servicebus/src/main/java/com/microsoft/azure/servicebus/primitives/SessionLockLostException.java
SESSION_LOCK_LOST = "com.microsoft:session-lock-lost"


class Settlement:
    """The message locks receivers hold, and what settling, renewing or losing one does."""

    def __init__(self, bus: ServiceBus) -> None:
        self._bus = bus
        # (until, path, token) per message lock taken or renewed; stale entries are skipped.
        self._lock_heap: list[tuple[int, str, bytes]] = []

    def lock(self, entity: Entity, message: StoredMessage, owner: object | None, now: int) -> bytes:
        """Lock a message for ``owner`` (see StoredMessage.owner); session messages share their session's
        lock time."""
        token = _new_token()
        message.lock_token = token
        message.owner = owner
        session = entity.session_locks.get(message.env.session_id or "") if entity.sessionful else None
        if session is not None:
            message.locked_until_ms = session.until_ms
        else:
            message.locked_until_ms = now + entity.settings.lock_ms
            heapq.heappush(self._lock_heap, (message.locked_until_ms, entity.path, token))
        entity.locks[token] = message
        return token

    def settle(
        self,
        entity: Entity,
        token: bytes,
        outcome: str,
        *,
        owner: object | None = None,
        reason: str | None = None,
        description: str | None = None,
    ) -> None:
        """Apply a settlement to the message locked under ``token``; BrokerError if the lock is gone."""
        bus = self._bus
        message = self._locked(entity, token, owner)
        self._check_session(entity, message, owner)
        if outcome == DEAD_LETTER and entity.dead_letter is None:
            # "you can't dead-letter a message from a DLQ" (the service's error is not published; the
            # AMQP condition is the one the emulator answers for a send to a DLQ): the message keeps its
            # lock and comes back when it ends, as a refused settlement leaves it, rather than being lost.
            # https://github.com/MicrosoftDocs/azure-docs/blob/e2a866a7602194564f176a353eb46fae720bab1e/articles/service-bus-messaging/service-bus-dead-letter-queues.md
            raise BrokerError(
                "amqp:not-allowed",
                f"Cannot dead-letter a message of '{entity.path}', a dead-letter queue: complete it instead.",
            )
        now = bus.now_ms()
        if outcome == COMPLETE:
            entity.remove(message.seq)
            bus.journal.delete(entity.path, message.seq)
        elif outcome == DEAD_LETTER:
            bus.placement.dead_letter(entity, message, reason, description)
        elif outcome == DEFER:
            self._unlock(entity, message)
            message.state = DEFERRED
            bus.journal.update(entity.path, message)
        elif outcome == RELEASE:
            self.requeue(entity, message, failed=False, now=now)
        else:
            self.requeue(entity, message, failed=True, now=now)
        bus.delivery.dispatch(entity, message.env.session_id if entity.sessionful else None)

    def _locked(self, entity: Entity, token: bytes, owner: object | None) -> StoredMessage:
        message = entity.locks.get(token)
        if message is None or message.locked_until_ms <= self._bus.now_ms():
            condition = SESSION_LOCK_LOST if entity.sessionful else LOCK_LOST
            raise BrokerError(
                condition, "The lock supplied is invalid: it expired or the message was settled.", status=410
            )
        if owner is not None and message.owner is not None and message.owner is not owner:
            raise BrokerError(LOCK_LOST, "The message is locked by another receiver.", status=410)
        return message

    def _check_session(self, entity: Entity, message: StoredMessage, owner: object | None) -> None:
        if not entity.sessionful or owner is None:
            return
        lock = entity.session_locks.get(message.env.session_id or "")
        if lock is None or lock.owner is not owner or lock.until_ms <= self._bus.now_ms():
            raise BrokerError(
                SESSION_LOCK_LOST, "The session lock was lost. Accept the session again.", status=410
            )

    @staticmethod
    def _unlock(entity: Entity, message: StoredMessage) -> None:
        if message.lock_token is not None:
            entity.locks.pop(message.lock_token, None)
        message.lock_token = None
        message.owner = None

    def requeue(self, entity: Entity, message: StoredMessage, *, failed: bool, now: int) -> None:
        """Return a message after abandon, release or lock expiry; failures count towards the limit."""
        bus = self._bus
        self._unlock(entity, message)
        if failed:
            message.delivery_count += 1
            limit = entity.settings.max_delivery_count
            if entity.dead_letter is not None and message.delivery_count >= limit:
                text = f"Message could not be consumed after {limit} delivery attempts."
                bus.placement.dead_letter(entity, message, "MaxDeliveryCountExceeded", text)
                return
            bus.journal.update(entity.path, message)
        if message.state == ACTIVE:
            if message.expires_ms is not None and message.expires_ms <= now:
                bus.placement.expire(entity, message)
            else:
                entity.make_ready(message)

    def renew(self, entity: Entity, token: bytes) -> int:
        """Extend a message lock by the entity's lock duration; return the new locked-until (ms)."""
        message = self._locked(entity, token, None)
        if entity.sessionful:
            # Session messages are held by the session lock; renewing that is what extends them.
            return message.locked_until_ms
        message.locked_until_ms = self._bus.now_ms() + entity.settings.lock_ms
        heapq.heappush(self._lock_heap, (message.locked_until_ms, entity.path, token))
        return message.locked_until_ms

    def expire_locks(self, now: int) -> None:
        """Treat every message lock that ran out as a failed delivery."""
        bus = self._bus
        while self._lock_heap and self._lock_heap[0][0] <= now:
            _, path, token = heapq.heappop(self._lock_heap)
            entity = bus.entities.get(path)  # None: the entity was deleted since
            if entity is None:
                continue
            message = entity.locks.get(token)
            # Renewals push a later entry; only the entry matching the current lock time counts.
            if message is not None and message.locked_until_ms <= now:
                self.requeue(entity, message, failed=True, now=now)
                bus.delivery.dispatch(entity, message.env.session_id if entity.sessionful else None)

    def next_lock_expiry_ms(self) -> int | None:
        """When ``expire_locks`` next has work, if ever."""
        return self._lock_heap[0][0] if self._lock_heap else None

    def release_held(self, entity: Entity, holders: Container[object], *, failed: bool) -> None:
        """Free the session and message locks ``holders`` have on ``entity``; ``failed`` counts a delivery."""
        sessions = {sid for sid, lock in entity.session_locks.items() if lock.owner in holders}
        for session_id in sessions:
            del entity.session_locks[session_id]
        # A session's messages are locked by its session lock, whoever received them (link or $management).
        held = [m for m in entity.locks.values() if m.owner in holders or m.env.session_id in sessions]
        now = self._bus.now_ms()
        for message in held:
            self.requeue(entity, message, failed=failed, now=now)
        self._bus.delivery.dispatch(entity, None)

    @staticmethod
    def hand_over(entity: Entity, holder: object, heir: object) -> None:
        """Make ``heir`` the holder of every message lock ``holder`` has on ``entity``."""
        for message in entity.locks.values():
            if message.owner is holder:
                message.owner = heir


def _new_token() -> bytes:
    # Lock tokens are random UUIDs; the SDK reads the delivery tag as UUID(bytes_le=tag).
    return os.urandom(16)
