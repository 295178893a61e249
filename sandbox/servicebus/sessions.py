"""Sessions: their locks (by id or next available), renewal and expiry, waiting receivers, and state."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dualbus.sandbox.servicebus.entity import Consumer, Entity, SessionLock
from dualbus.sandbox.servicebus.errors import BrokerError
from dualbus.sandbox.servicebus.settlement import SESSION_LOCK_LOST

if TYPE_CHECKING:
    from dualbus.sandbox.servicebus.bus import ServiceBus

__all__ = ["SESSION_CANNOT_BE_LOCKED", "Sessions", "Waiter"]

SESSION_CANNOT_BE_LOCKED = "com.microsoft:session-cannot-be-locked"


@dataclass(slots=True, eq=False)
class Waiter:
    """A receiver waiting for the next available session, until ``deadline_ms``."""

    entity: Entity
    consumer: Consumer
    deadline_ms: int
    on_session: Callable[[str | None, int], None]


class Sessions:
    """Who holds which session until when, who waits for one, and each session's state."""

    def __init__(self, bus: ServiceBus) -> None:
        self._bus = bus
        self.waiters: list[Waiter] = []
        # (until, path, session id) per session lock taken or renewed; stale entries are skipped.
        self._session_heap: list[tuple[int, str, str]] = []

    def accept_session(self, entity: Entity, consumer: Consumer, session_id: str) -> int:
        """Lock ``session_id`` for ``consumer`` (ending a lock that ran out first); return locked-until (ms)
        or raise if someone holds it."""
        now = self._bus.now_ms()
        lock = entity.session_locks.get(session_id)
        if lock is not None and lock.until_ms <= now:
            # The timers may not have processed this expiry yet: the loop handles what arrived before it runs
            # them, and a schedule falling due runs before session expiry. Free what the old holder's lock
            # still holds first, or the new holder would start behind those messages.
            self._lapse(entity, session_id, now)
        elif lock is not None and lock.owner is not consumer:
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
        """Hand free sessions with messages to waiting receivers, oldest waiter first.

        A hand-over may call back in (the receiver's link opens and dispatches, which asks again and serves
        the next waiter then): each turn looks afresh at who is waiting and which session is free, where a
        list taken before the first hand-over served that waiter again.
        """
        while True:
            waiter = next((w for w in self.waiters if w.entity is entity), None)
            if waiter is None:
                return
            session_id = next(entity.free_sessions(self._bus.now_ms()), None)
            if session_id is None:
                return
            self.waiters.remove(waiter)
            until = self.accept_session(entity, waiter.consumer, session_id)
            waiter.on_session(session_id, until)

    def cancel_wait(self, consumer: Consumer) -> None:
        """Stop waiting for a session (the receiver went away)."""
        self.waiters = [w for w in self.waiters if w.consumer is not consumer]

    def renew_session(self, entity: Entity, session_id: str, holders: Container[object]) -> int:
        """Extend a session lock one of ``holders`` has; return the new locked-until (ms)."""
        now = self._bus.now_ms()
        lock = self.held_lock(entity, session_id, holders)
        lock.until_ms = now + entity.settings.lock_ms
        heapq.heappush(self._session_heap, (lock.until_ms, entity.path, session_id))
        for message in entity.locks.values():
            if message.env.session_id == session_id:
                message.locked_until_ms = lock.until_ms
        return lock.until_ms

    def held_lock(self, entity: Entity, session_id: str, holders: Container[object]) -> SessionLock:
        """The live lock on ``session_id`` if one of ``holders`` has it, else BrokerError (session lock lost).

        Azure answers a session operation from a receiver whose session lock expired with SessionLockLost,
        also once another receiver has accepted the session since (see SESSION_LOCK_LOST): the old holder
        must neither overwrite the new holder's state nor extend its lock.
        """
        lock = entity.session_locks.get(session_id)
        if lock is None or lock.until_ms <= self._bus.now_ms() or lock.owner not in holders:
            raise BrokerError(SESSION_LOCK_LOST, f"The session lock on '{session_id}' was lost.", status=410)
        return lock

    def expire(self, now: int) -> None:
        """Free sessions whose lock ran out (their messages count a failed delivery); time out waiters."""
        self._expire_sessions(now)
        for waiter in [w for w in self.waiters if w.deadline_ms <= now]:
            self.waiters.remove(waiter)
            waiter.on_session(None, 0)

    def _expire_sessions(self, now: int) -> None:
        while self._session_heap and self._session_heap[0][0] <= now:
            _, path, session_id = heapq.heappop(self._session_heap)
            entity = self._bus.entities.get(path)  # None: the entity was deleted since
            if entity is None:
                continue
            lock = entity.session_locks.get(session_id)
            if lock is None or lock.until_ms > now:
                continue  # released, renewed, or taken by a new holder since this entry was pushed
            self._lapse(entity, session_id, now)
            self.on_session_ready(entity)

    def _lapse(self, entity: Entity, session_id: str, now: int) -> None:
        """End a session lock that ran out: the messages it held come back unlocked, each charged a delivery.

        The one path for an expired session lock, whether the timers find it or a new holder takes the
        session first. Azure releases a session lock "when the lock expires" and counts a delivery for
        "Session is accepted, but the session lock expires (due to timeout)"
        (https://github.com/MicrosoftDocs/azure-docs/blob/01256f9454e5bf1dc3d783779a6e2412609b07c9/articles/service-bus-messaging/message-sessions.md);
        an expired lock's message "pops back up at or near the front of the retrieval order"
        (https://github.com/MicrosoftDocs/azure-docs/blob/ad9abf9aa08a35b00385cd36a9c64ca35cc36adc/articles/service-bus-messaging/message-transfers-locks-settlement.md).
        The old holder learns it lost the lock from its next call (SESSION_LOCK_LOST: its tokens are gone).
        """
        del entity.session_locks[session_id]
        held = [m for m in entity.locks.values() if m.env.session_id == session_id]
        held.sort(key=lambda m: m.seq)
        for message in held:
            self._bus.settlement.requeue(entity, message, failed=True, now=now)

    def next_deadline_ms(self) -> int | None:
        """When ``expire`` next has work, if ever."""
        candidates = [w.deadline_ms for w in self.waiters]
        if self._session_heap:
            candidates.append(self._session_heap[0][0])
        return min(candidates) if candidates else None

    def get_state(self, entity: Entity, session_id: str, holders: Container[object]) -> bytes | None:
        """The state of a session one of ``holders`` has locked, or None if never set."""
        self.held_lock(entity, session_id, holders)
        return entity.session_state.get(session_id)

    def set_state(
        self, entity: Entity, session_id: str, state: bytes | None, holders: Container[object]
    ) -> None:
        """Set or clear the state of a session one of ``holders`` has locked (durable)."""
        self.held_lock(entity, session_id, holders)
        if state is None:
            entity.session_state.pop(session_id, None)
        else:
            entity.session_state[session_id] = state
        self._bus.journal.session_state(entity.path, session_id, state)
