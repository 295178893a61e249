"""Settlement, locks and sessions on top of the broker's routing.

Complete, abandon, defer, dead-letter and release by lock token; lock renewal and expiry (which counts as
a failed delivery, as in Azure); MaxDeliveryCountExceeded; releasing what a departed receiver held;
session locks (by id or next available), their renewal, expiry and state. Peek and deferred receive are in
``sandbox.servicebus.lookup``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from dualbus.sandbox.servicebus.broker import Broker
from dualbus.sandbox.servicebus.entity import ACTIVE, DEFERRED, Consumer, Entity, SessionLock, StoredMessage
from dualbus.sandbox.servicebus.errors import BrokerError

__all__ = [
    "ABANDON",
    "COMPLETE",
    "DEAD_LETTER",
    "DEFER",
    "LOCK_LOST",
    "RELEASE",
    "SESSION_LOCK_LOST",
    "ServiceBus",
    "Waiter",
]

COMPLETE, ABANDON, DEFER, DEAD_LETTER, RELEASE = "complete", "abandon", "defer", "dead-letter", "release"
LOCK_LOST = "com.microsoft:message-lock-lost"
SESSION_LOCK_LOST = "com.microsoft:session-lock-lost"
SESSION_CANNOT_BE_LOCKED = "com.microsoft:session-cannot-be-locked"


@dataclass(slots=True, eq=False)
class Waiter:
    """A receiver waiting for the next available session, until ``deadline_ms``."""

    entity: Entity
    consumer: Consumer
    deadline_ms: int
    on_session: Callable[[str | None, int], None]


class ServiceBus(Broker):
    """The broker with everything receivers do."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - Broker's arguments, passed on
        super().__init__(*args, **kwargs)
        self.waiters: list[Waiter] = []
        # (until, path, session id) per session lock taken or renewed; stale entries are skipped.
        self._session_heap: list[tuple[int, str, str]] = []

    # -- settlement ----------------------------------------------------------------------------

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
        message = self._locked(entity, token, owner)
        self._check_session(entity, message, owner)
        now = self.now_ms()
        if outcome == COMPLETE:
            entity.remove(message.seq)
            self.journal.delete(entity.path, message.seq)
        elif outcome == DEAD_LETTER:
            self.dead_letter(entity, message, reason, description)
        elif outcome == DEFER:
            self._unlock(entity, message)
            message.state = DEFERRED
            self.journal.update(entity.path, message)
        elif outcome == RELEASE:
            self._requeue(entity, message, failed=False, now=now)
        else:
            self._requeue(entity, message, failed=True, now=now)
        self.dispatch(entity, message.env.session_id if entity.sessionful else None)

    def _locked(self, entity: Entity, token: bytes, owner: object | None) -> StoredMessage:
        message = entity.locks.get(token)
        if message is None or message.locked_until_ms <= self.now_ms():
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
        if lock is None or lock.owner is not owner or lock.until_ms <= self.now_ms():
            raise BrokerError(
                SESSION_LOCK_LOST, "The session lock was lost. Accept the session again.", status=410
            )

    def _unlock(self, entity: Entity, message: StoredMessage) -> None:
        if message.lock_token is not None:
            entity.locks.pop(message.lock_token, None)
        message.lock_token = None
        message.owner = None

    def _requeue(self, entity: Entity, message: StoredMessage, *, failed: bool, now: int) -> None:
        """Return a message after abandon, release or lock expiry; failures count towards the limit."""
        self._unlock(entity, message)
        if failed:
            message.delivery_count += 1
            limit = entity.settings.max_delivery_count
            if entity.dead_letter is not None and message.delivery_count >= limit:
                text = f"Message could not be consumed after {limit} delivery attempts."
                self.dead_letter(entity, message, "MaxDeliveryCountExceeded", text)
                return
            self.journal.update(entity.path, message)
        if message.state == ACTIVE:
            if message.expires_ms is not None and message.expires_ms <= now:
                self.expire(entity, message)
            else:
                entity.make_ready(message)

    def renew(self, entity: Entity, token: bytes) -> int:
        """Extend a message lock by the entity's lock duration; return the new locked-until (ms)."""
        message = self._locked(entity, token, None)
        if entity.sessionful:
            # Session messages are held by the session lock; renewing that is what extends them.
            return message.locked_until_ms
        message.locked_until_ms = self.now_ms() + entity.settings.lock_ms
        heapq.heappush(self.lock_heap, (message.locked_until_ms, entity.path, token))
        return message.locked_until_ms

    def expire_locks(self, now: int) -> None:
        """Treat every lock that ran out as a failed delivery, and free sessions whose lock ran out."""
        while self.lock_heap and self.lock_heap[0][0] <= now:
            _, path, token = heapq.heappop(self.lock_heap)
            entity = self.entities.get(path)  # None: the entity was deleted since
            if entity is None:
                continue
            message = entity.locks.get(token)
            # Renewals push a later entry; only the entry matching the current lock time counts.
            if message is not None and message.locked_until_ms <= now:
                self._requeue(entity, message, failed=True, now=now)
                self.dispatch(entity, message.env.session_id if entity.sessionful else None)
        self._expire_sessions(now)
        self._expire_waiters(now)

    # -- sessions ------------------------------------------------------------------------------

    def accept_session(self, entity: Entity, consumer: Consumer, session_id: str) -> int:
        """Lock ``session_id`` for ``consumer``; return locked-until (ms) or raise if someone holds it."""
        now = self.now_ms()
        if entity.session_held(session_id, now) and entity.session_locks[session_id].owner is not consumer:
            raise BrokerError(
                SESSION_CANNOT_BE_LOCKED,
                f"The session '{session_id}' is locked by another receiver.",
                status=410,
            )
        until = now + entity.settings.lock_ms
        entity.session_locks[session_id] = SessionLock(consumer, until)
        heapq.heappush(self._session_heap, (until, entity.path, session_id))
        return until

    def wait_for_session(
        self,
        entity: Entity,
        consumer: Consumer,
        deadline_ms: int,
        on_session: Callable[[str | None, int], None],
    ) -> None:
        """Give ``consumer`` the next free session now or when one has messages, or time out."""
        self.waiters.append(Waiter(entity, consumer, deadline_ms, on_session))
        self.on_session_ready(entity)

    def on_session_ready(self, entity: Entity) -> None:
        """Hand free sessions with messages to waiting receivers, oldest waiter first."""
        waiting = [w for w in self.waiters if w.entity is entity]
        if not waiting:
            return
        for session_id in entity.free_sessions(self.now_ms()):
            if not waiting:
                break
            waiter = waiting.pop(0)
            self.waiters.remove(waiter)
            until = self.accept_session(entity, waiter.consumer, session_id)
            waiter.on_session(session_id, until)

    def _expire_waiters(self, now: int) -> None:
        for waiter in [w for w in self.waiters if w.deadline_ms <= now]:
            self.waiters.remove(waiter)
            waiter.on_session(None, 0)

    def cancel_wait(self, consumer: Consumer) -> None:
        """Stop waiting for a session (the receiver went away)."""
        self.waiters = [w for w in self.waiters if w.consumer is not consumer]

    def renew_session(self, entity: Entity, session_id: str) -> int:
        """Extend a held session lock; return the new locked-until (ms)."""
        now = self.now_ms()
        lock = entity.session_locks.get(session_id)
        if lock is None or lock.until_ms <= now:
            raise BrokerError(SESSION_LOCK_LOST, f"The session lock on '{session_id}' was lost.", status=410)
        lock.until_ms = now + entity.settings.lock_ms
        heapq.heappush(self._session_heap, (lock.until_ms, entity.path, session_id))
        for message in entity.locks.values():
            if message.env.session_id == session_id:
                message.locked_until_ms = lock.until_ms
        return lock.until_ms

    def release_held(self, entity: Entity, holders: Container[object], *, failed: bool) -> None:
        """Free the session and message locks ``holders`` have on ``entity``; ``failed`` counts a delivery."""
        sessions = {sid for sid, lock in entity.session_locks.items() if lock.owner in holders}
        for session_id in sessions:
            del entity.session_locks[session_id]
        # A session's messages are locked by its session lock, whoever received them (link or $management).
        held = [m for m in entity.locks.values() if m.owner in holders or m.env.session_id in sessions]
        now = self.now_ms()
        for message in held:
            self._requeue(entity, message, failed=failed, now=now)
        self.dispatch(entity, None)

    @staticmethod
    def hand_over(entity: Entity, holder: object, heir: object) -> None:
        """Make ``heir`` the holder of every message lock ``holder`` has on ``entity``."""
        for message in entity.locks.values():
            if message.owner is holder:
                message.owner = heir

    def _expire_sessions(self, now: int) -> None:
        while self._session_heap and self._session_heap[0][0] <= now:
            _, path, session_id = heapq.heappop(self._session_heap)
            entity = self.entities.get(path)  # None: the entity was deleted since
            if entity is None:
                continue
            lock = entity.session_locks.get(session_id)
            if lock is None or lock.until_ms > now:
                continue  # released, or renewed since this entry was pushed
            del entity.session_locks[session_id]
            for message in [m for m in entity.locks.values() if m.env.session_id == session_id]:
                self._requeue(entity, message, failed=True, now=now)
            self.on_session_ready(entity)

    def get_state(self, entity: Entity, session_id: str) -> bytes | None:
        """A session's state, or None if never set."""
        return entity.session_state.get(session_id)

    def set_state(self, entity: Entity, session_id: str, state: bytes | None) -> None:
        """Set or clear a session's state (durable)."""
        if state is None:
            entity.session_state.pop(session_id, None)
        else:
            entity.session_state[session_id] = state
        self.journal.session_state(entity.path, session_id, state)

    def timers(self, now: int) -> None:
        """Run every time-driven rule: schedules, TTL, message and session locks, session waits."""
        self.run_timers(now)
        self.expire_locks(now)

    def next_deadline_ms(self) -> int | None:
        """The earliest time ``timers`` has work to do."""
        candidates = [self.next_timer_ms()]
        candidates += [w.deadline_ms for w in self.waiters]
        if self._session_heap:
            candidates.append(self._session_heap[0][0])
        present = [c for c in candidates if c is not None]
        return min(present) if present else None
