"""Queues, subscriptions and their dead-letter sub-queues: stored messages, the ready order, locks, sessions.

An Entity knows nothing of AMQP or SQLite; the broker drives it and journals what changed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from dualbus.sandbox.servicebus.message import SentMessage

__all__ = [
    "ACTIVE",
    "DEFERRED",
    "SCHEDULED",
    "Consumer",
    "Entity",
    "EntitySettings",
    "SessionLock",
    "StoredMessage",
]

# Values of the x-opt-message-state annotation the SDK reads (ServiceBusMessageState).
ACTIVE, DEFERRED, SCHEDULED = 0, 1, 2


class Consumer(Protocol):
    """A receiving link as the broker sees it."""

    peek_lock: bool
    session_id: str | None

    def credit(self) -> int:
        """How many more messages the client has asked for."""
        ...

    def deliver(self, message: StoredMessage, payload: bytes, lock_token: bytes | None) -> None:
        """Send one message to the client; ``lock_token`` is None when it is settled on sending."""
        ...


@dataclass(frozen=True, slots=True)
class EntitySettings:
    """The entity properties the broker honours, in milliseconds where they are durations."""

    lock_ms: int = 60_000
    max_delivery_count: int = 10
    requires_session: bool = False
    ttl_ms: int | None = None
    dead_letter_on_expiry: bool = False
    duplicate_window_ms: int | None = None
    forward_to: str | None = None
    forward_dead_letters_to: str | None = None


@dataclass(slots=True, eq=False)
class StoredMessage:
    """One message in one entity, with its mutable delivery state."""

    seq: int
    env: SentMessage
    enqueued_ms: int
    expires_ms: int | None = None
    delivery_count: int = 0
    state: int = ACTIVE
    scheduled_ms: int | None = None
    lock_token: bytes | None = None
    locked_until_ms: int = 0
    # Who holds the lock: the receiving link it was delivered on, or a connection (for a $management
    # receive, or once the link closed); a departing holder's locks are released with it.
    owner: object | None = None


@dataclass(slots=True)
class SessionLock:
    """Who holds a session and until when."""

    owner: Consumer
    until_ms: int


@dataclass(eq=False)
class Entity:
    """A queue, a subscription, a dead-letter sub-queue, or a topic (which only holds scheduled messages)."""

    path: str
    settings: EntitySettings = field(default_factory=EntitySettings)
    is_topic: bool = False
    dead_letter: Entity | None = None
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    locks: dict[bytes, StoredMessage] = field(default_factory=dict)
    consumers: list[Consumer] = field(default_factory=list)
    session_locks: dict[str, SessionLock] = field(default_factory=dict)
    session_state: dict[str, bytes] = field(default_factory=dict)
    accessed_at_ms: int | None = None  # the last time a message was handed to a receiver
    _ready: list[int] = field(default_factory=list)
    _session_ready: dict[str, list[int]] = field(default_factory=dict)

    @property
    def sessionful(self) -> bool:
        """True if messages are received per session."""
        return self.settings.requires_session

    def add(self, message: StoredMessage) -> None:
        """Store ``message``; if it is active, it becomes ready for delivery."""
        self.messages[message.seq] = message
        if message.state == ACTIVE:
            self.make_ready(message)

    def make_ready(self, message: StoredMessage) -> None:
        """Put an unlocked active message back in sequence order for delivery."""
        message.lock_token = None
        message.owner = None
        if self.sessionful:
            heapq.heappush(self._session_ready.setdefault(message.env.session_id or "", []), message.seq)
        else:
            heapq.heappush(self._ready, message.seq)

    def remove(self, seq: int) -> StoredMessage | None:
        """Forget a message (completed, moved, expired or deleted); drop its lock."""
        message = self.messages.pop(seq, None)
        if message is not None and message.lock_token is not None:
            self.locks.pop(message.lock_token, None)
        return message

    def next_ready(
        self, session_id: str | None, now_ms: int, on_expired: Callable[[StoredMessage], None]
    ) -> StoredMessage | None:
        """Pop the lowest-sequence deliverable message, handing expired ones to ``on_expired`` on the way."""
        heap = self._session_ready.get(session_id or "") if self.sessionful else self._ready
        while heap:
            seq = heapq.heappop(heap)
            message = self.messages.get(seq)
            # Heap entries go stale when a message is settled or re-queued elsewhere; skip those.
            if message is None or message.state != ACTIVE or message.lock_token is not None:
                continue
            if message.expires_ms is not None and message.expires_ms <= now_ms:
                on_expired(message)
                continue
            return message
        return None

    def has_ready(self, session_id: str | None = None) -> bool:
        """True if a message may be waiting (stale entries are only found by popping)."""
        if self.sessionful:
            return bool(self._session_ready.get(session_id or ""))
        return bool(self._ready)

    def free_sessions(self, now_ms: int) -> Iterator[str]:
        """Sessions with waiting messages that nobody holds, lowest head sequence number first."""
        candidates = [
            (heap[0], sid)
            for sid, heap in self._session_ready.items()
            if heap and not self.session_held(sid, now_ms)
        ]
        for _, sid in sorted(candidates):
            yield sid

    def session_held(self, session_id: str, now_ms: int) -> bool:
        """True if a live lock on ``session_id`` exists."""
        lock = self.session_locks.get(session_id)
        return lock is not None and lock.until_ms > now_ms

    def ready_count(self) -> int:
        """Active, unlocked messages (for tests and status)."""
        return sum(1 for m in self.messages.values() if m.state == ACTIVE and m.lock_token is None)

    def in_order(self, from_seq: int, session_id: str | None = None) -> Iterator[StoredMessage]:
        """Messages from ``from_seq`` on in sequence order, for peek."""
        for seq in sorted(s for s in self.messages if s >= from_seq):
            message = self.messages[seq]
            if session_id is None or message.env.session_id == session_id:
                yield message
