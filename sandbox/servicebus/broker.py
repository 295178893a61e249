"""The broker: routes sends to queues and subscriptions and hands ready messages to consumers.

Semantics follow Azure Service Bus: sequence numbers, duplicate detection by message id within a window,
TTL with optional dead-lettering, scheduled messages, auto-forwarding, and topic fan-out through
subscription rules. Settlement, locks and sessions live in ``sandbox.servicebus.settlement``.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Callable

from dualbus.sandbox.servicebus.entity import ACTIVE, SCHEDULED, Consumer, Entity, StoredMessage
from dualbus.sandbox.servicebus.errors import BrokerError
from dualbus.sandbox.servicebus.message import SentMessage
from dualbus.sandbox.servicebus.outgoing import compose, with_dead_letter
from dualbus.sandbox.servicebus.routing import Route
from dualbus.sandbox.servicebus.store import Journal

__all__ = ["NOT_FOUND", "Broker"]

NOT_FOUND = "amqp:not-found"
_MAX_FORWARD_HOPS = 4


class Broker:
    """All entities of the emulator and the operations on them; single-threaded by design."""

    def __init__(
        self,
        entities: dict[str, Entity],
        routes: dict[str, list[Route]],
        journal: Journal,
        *,
        clock: Callable[[], float] = time.time,
        max_message_bytes: int = 256 * 1024,
    ) -> None:
        self.entities = entities
        self.routes = routes
        self.journal = journal
        self.clock = clock
        self.max_message_bytes = max_message_bytes
        self.next_seq = 1
        self._dedup: dict[str, dict[str, int]] = {}
        self._scheduled: list[tuple[int, str, int]] = []
        self._expiring: list[tuple[int, str, int]] = []
        self.lock_heap: list[tuple[int, str, bytes]] = []

    # -- lookups -------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The broker's clock in milliseconds."""
        return int(self.clock() * 1000)

    def entity(self, path: str) -> Entity:
        """The entity at ``path`` (lower case), or BrokerError amqp:not-found."""
        found = self.entities.get(path)
        if found is None:
            raise BrokerError(NOT_FOUND, f"The messaging entity '{path}' could not be found.", status=404)
        return found

    # -- sending -------------------------------------------------------------------------------

    def check_sendable(self, path: str, envs: list[SentMessage]) -> Entity:
        """The target of a send, or BrokerError before anything of a batch is stored."""
        target = self.entity(path)
        if (target.dead_letter is None and not target.is_topic) or "/subscriptions/" in path:
            raise BrokerError("amqp:not-allowed", f"Cannot send to '{path}': send to its queue or topic.")
        if target.sessionful and any(env.session_id is None for env in envs):
            raise BrokerError(
                "amqp:not-allowed",
                f"The entity '{path}' requires sessions: set the session id on every message sent to it.",
            )
        if target.is_topic:
            # Rules read user properties, which are decoded on first use: a malformed map must refuse the
            # whole batch here, not halfway through storing it.
            for env in envs:
                env.application_properties()
        return target

    def send(self, path: str, env: SentMessage) -> int | None:
        """Accept a message for a queue or topic; return its sequence number (None if a duplicate)."""
        target = self.check_sendable(path, [env])
        if self._is_duplicate(target, env):
            return None
        seq = self._take_seq()
        if env.scheduled_ms is not None and env.scheduled_ms > self.now_ms():
            self._hold_scheduled(target, seq, env)
        else:
            self._route(target, seq, env, self.now_ms())
        return seq

    def _take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self.journal.next_seq(self.next_seq)
        return seq

    def _is_duplicate(self, target: Entity, env: SentMessage) -> bool:
        window = target.settings.duplicate_window_ms
        message_id = env.message_id
        if window is None or message_id is None:
            return False
        now = self.now_ms()
        seen = self._dedup.setdefault(target.path, {})
        if seen.get(message_id, 0) > now:
            return True
        seen[message_id] = now + window
        self.journal.dedup(target.path, message_id, now + window)
        return False

    def remember_dedup(self, path: str, message_id: str, expires_ms: int) -> None:
        """Restore one duplicate-detection entry at start-up."""
        self._dedup.setdefault(path, {})[message_id] = expires_ms

    def _hold_scheduled(self, target: Entity, seq: int, env: SentMessage) -> None:
        due = env.scheduled_ms or 0
        message = StoredMessage(seq, env, self.now_ms(), state=SCHEDULED, scheduled_ms=due)
        target.messages[seq] = message
        self.journal.insert(target.path, message)
        heapq.heappush(self._scheduled, (due, target.path, seq))

    def _route(self, target: Entity, seq: int, env: SentMessage, now: int, hops: int = 0) -> None:
        if target.is_topic:
            for route in self.routes.get(target.path, []):
                for index, copy in enumerate(route.copies(env)):
                    # Extra copies (one per rule action) are distinct messages with numbers of their own.
                    self.enqueue(route.subscription, seq if index == 0 else self._take_seq(), copy, now, hops)
        else:
            self.enqueue(target, seq, env, now, hops)

    def enqueue(self, entity: Entity, seq: int, env: SentMessage, now: int, hops: int = 0) -> None:
        """Add a message to a queue, subscription or dead-letter queue, following auto-forwarding."""
        forward = entity.settings.forward_to
        if forward and hops < _MAX_FORWARD_HOPS and forward in self.entities:
            # The destination numbers what it receives, as in Azure: copies of one message forwarded by
            # two subscriptions to one queue are two messages there, not one under a shared number.
            self._route(self.entities[forward], self._take_seq(), env, now, hops + 1)
            return
        ttl = _effective_ttl(env.ttl_ms, entity.settings.ttl_ms)
        expires = now + ttl if ttl is not None else None
        message = StoredMessage(seq, env, now, expires)
        entity.add(message)
        self.journal.insert(entity.path, message)
        if expires is not None:
            heapq.heappush(self._expiring, (expires, entity.path, seq))
        self.dispatch(entity, env.session_id if entity.sessionful else None)

    def restore(self, path: str, message: StoredMessage) -> bool:
        """Put a message read from the journal back, unlocked (start-up only); False if ``path`` is not
        an entity of this configuration."""
        entity = self.entities.get(path)
        if entity is None:
            return False
        entity.add(message)
        if message.state == SCHEDULED and message.scheduled_ms is not None:
            heapq.heappush(self._scheduled, (message.scheduled_ms, path, message.seq))
        if message.expires_ms is not None:
            heapq.heappush(self._expiring, (message.expires_ms, path, message.seq))
        return True

    # -- scheduled messages --------------------------------------------------------------------

    def schedule(self, path: str, envs: list[SentMessage]) -> list[int]:
        """Hold messages until their scheduled enqueue time; return their sequence numbers."""
        target = self.entity(path)
        numbers = []
        for env in envs:
            seq = self._take_seq()
            self._hold_scheduled(target, seq, env)
            numbers.append(seq)
        return numbers

    def cancel_scheduled(self, path: str, numbers: list[int]) -> None:
        """Drop scheduled messages; unknown numbers are an error, as in Azure."""
        target = self.entity(path)
        for seq in numbers:
            message = target.messages.get(seq)
            if message is None or message.state != SCHEDULED:
                raise BrokerError(
                    "com.microsoft:message-not-found", f"No scheduled message {seq}.", status=404
                )
            target.remove(seq)
            self.journal.delete(target.path, seq)

    def _activate_due(self, now: int) -> None:
        while self._scheduled and self._scheduled[0][0] <= now:
            _, path, seq = heapq.heappop(self._scheduled)
            target = self.entities.get(path)  # None: the entity was deleted since
            message = target.messages.get(seq) if target is not None else None
            if target is None or message is None or message.state != SCHEDULED:
                continue
            target.messages.pop(seq)
            self.journal.delete(path, seq)
            self._route(target, seq, message.env, now)

    # -- expiry and dead-lettering -------------------------------------------------------------

    def expire(self, entity: Entity, message: StoredMessage) -> None:
        """Remove an expired message, dead-lettering it if the entity says so."""
        if entity.settings.dead_letter_on_expiry:
            self.dead_letter(
                entity, message, "TTLExpiredException", "The message expired and was dead lettered."
            )
        else:
            entity.remove(message.seq)
            self.journal.delete(entity.path, message.seq)

    def dead_letter(
        self, entity: Entity, message: StoredMessage, reason: str | None, text: str | None
    ) -> None:
        """Move a message to its entity's dead-letter queue (or where dead letters are forwarded)."""
        entity.remove(message.seq)
        self.journal.delete(entity.path, message.seq)
        env = with_dead_letter(message.env, reason, text)
        forward = entity.settings.forward_dead_letters_to
        if forward and forward in self.entities:
            self._route(self.entities[forward], self._take_seq(), env, self.now_ms(), 1)
            return
        dlq = entity.dead_letter
        if dlq is None:  # a dead-letter queue's own messages are never dead-lettered again
            return
        moved = StoredMessage(message.seq, env, message.enqueued_ms, None, message.delivery_count)
        dlq.add(moved)
        self.journal.insert(dlq.path, moved)
        self.dispatch(dlq, None)

    def _expire_due(self, now: int) -> None:
        while self._expiring and self._expiring[0][0] <= now:
            _, path, seq = heapq.heappop(self._expiring)
            entity = self.entities.get(path)  # None: the entity was deleted since
            if entity is None:
                continue
            message = entity.messages.get(seq)
            # A locked message expires when its lock ends or it is settled, as in Azure.
            if message is not None and message.state == ACTIVE and message.lock_token is None:
                self.expire(entity, message)

    # -- delivery ------------------------------------------------------------------------------

    def dispatch(self, entity: Entity, session_id: str | None) -> None:
        """Hand ready messages to consumers with credit, in sequence order, round robin."""
        if entity.sessionful:
            lock = entity.session_locks.get(session_id or "")
            if lock is not None and lock.until_ms > self.now_ms():
                self._feed(entity, [lock.owner], session_id)
            self.on_session_ready(entity)
            return
        self._feed(entity, entity.consumers, None)

    def on_session_ready(self, entity: Entity) -> None:
        """Hook for session hand-out; replaced by the settlement layer."""

    def _feed(self, entity: Entity, consumers: list[Consumer], session_id: str | None) -> None:
        if not consumers or not entity.has_ready(session_id):
            return
        now = self.now_ms()
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
            self.hand_out(entity, consumer, message, now)

    def _expirer(self, entity: Entity) -> Callable[[StoredMessage], None]:
        def on_expired(message: StoredMessage) -> None:
            self.expire(entity, message)

        return on_expired

    def hand_out(self, entity: Entity, consumer: Consumer, message: StoredMessage, now: int) -> None:
        """Deliver one message: lock it (peek-lock) or remove it (receive-and-delete)."""
        entity.accessed_at_ms = now
        if not consumer.peek_lock:
            entity.remove(message.seq)
            self.journal.delete(entity.path, message.seq)
            consumer.deliver(message, self.payload(message, None), None)
            return
        token = self.lock(entity, message, consumer, now)
        consumer.deliver(message, self.payload(message, message.locked_until_ms), token)

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
            heapq.heappush(self.lock_heap, (message.locked_until_ms, entity.path, token))
        entity.locks[token] = message
        return token

    @staticmethod
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

    def run_timers(self, now: int) -> None:
        """Activate due scheduled messages and expire messages whose TTL has passed."""
        self._activate_due(now)
        self._expire_due(now)

    def next_timer_ms(self) -> int | None:
        """When ``run_timers`` next has work, if ever."""
        heads = [heap[0][0] for heap in (self._scheduled, self._expiring, self.lock_heap) if heap]
        return min(heads) if heads else None


def _effective_ttl(message_ttl: int | None, entity_ttl: int | None) -> int | None:
    if message_ttl is None:
        return entity_ttl
    return message_ttl if entity_ttl is None else min(message_ttl, entity_ttl)


def _new_token() -> bytes:
    # Lock tokens are random UUIDs; the SDK reads the delivery tag as UUID(bytes_le=tag).
    return os.urandom(16)
