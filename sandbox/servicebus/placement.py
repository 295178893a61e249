"""Putting messages into entities and taking them out when their time comes.

Topic fan-out through subscription rules, auto-forwarding, TTL (with optional dead-lettering), dead-letter
queues, and scheduled messages becoming active at their time.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from dualbus.sandbox.servicebus.entity import ACTIVE, SCHEDULED, Entity, StoredMessage
from dualbus.sandbox.servicebus.message import SentMessage
from dualbus.sandbox.servicebus.outgoing import with_dead_letter

if TYPE_CHECKING:
    from dualbus.sandbox.servicebus.bus import ServiceBus

__all__ = ["Placement"]

_MAX_FORWARD_HOPS = 4


class Placement:
    """Where each message goes, and the scheduled and expiring messages waiting for their time."""

    def __init__(self, bus: ServiceBus) -> None:
        self._bus = bus
        self._scheduled: list[tuple[int, str, int]] = []
        self._expiring: list[tuple[int, str, int]] = []

    def hold_scheduled(self, target: Entity, seq: int, env: SentMessage) -> None:
        """Keep a message until its scheduled enqueue time."""
        due = env.scheduled_ms or 0
        message = StoredMessage(seq, env, self._bus.now_ms(), state=SCHEDULED, scheduled_ms=due)
        target.messages[seq] = message
        self._bus.journal.insert(target.path, message)
        heapq.heappush(self._scheduled, (due, target.path, seq))

    def route(self, target: Entity, seq: int, env: SentMessage, now: int, hops: int = 0) -> None:
        """Enqueue a message on a queue, or a copy on each subscription of a topic whose rules admit it."""
        if target.is_topic:
            for route in self._bus.routes.get(target.path, []):
                for index, copy in enumerate(route.copies(env)):
                    # Extra copies (one per rule action) are distinct messages with numbers of their own.
                    number = seq if index == 0 else self._bus.take_seq()
                    self.enqueue(route.subscription, number, copy, now, hops)
        else:
            self.enqueue(target, seq, env, now, hops)

    def enqueue(self, entity: Entity, seq: int, env: SentMessage, now: int, hops: int = 0) -> None:
        """Add a message to a queue, subscription or dead-letter queue, following auto-forwarding."""
        bus = self._bus
        forward = entity.settings.forward_to
        if forward and hops < _MAX_FORWARD_HOPS and forward in bus.entities:
            # The destination numbers what it receives, as in Azure: copies of one message forwarded by
            # two subscriptions to one queue are two messages there, not one under a shared number.
            self.route(bus.entities[forward], bus.take_seq(), env, now, hops + 1)
            return
        ttl = _effective_ttl(env.ttl_ms, entity.settings.ttl_ms)
        expires = now + ttl if ttl is not None else None
        message = StoredMessage(seq, env, now, expires)
        entity.add(message)
        bus.journal.insert(entity.path, message)
        if expires is not None:
            heapq.heappush(self._expiring, (expires, entity.path, seq))
        bus.delivery.dispatch(entity, env.session_id if entity.sessionful else None)

    def restore(self, path: str, message: StoredMessage) -> bool:
        """Put a message read from the journal back, unlocked; False if ``path`` is no entity."""
        entity = self._bus.entities.get(path)
        if entity is None:
            return False
        entity.add(message)
        if message.state == SCHEDULED and message.scheduled_ms is not None:
            heapq.heappush(self._scheduled, (message.scheduled_ms, path, message.seq))
        if message.expires_ms is not None:
            heapq.heappush(self._expiring, (message.expires_ms, path, message.seq))
        return True

    def expire(self, entity: Entity, message: StoredMessage) -> None:
        """Remove an expired message, dead-lettering it if the entity says so."""
        if entity.settings.dead_letter_on_expiry:
            self.dead_letter(
                entity, message, "TTLExpiredException", "The message expired and was dead lettered."
            )
        else:
            entity.remove(message.seq)
            self._bus.journal.delete(entity.path, message.seq)

    def dead_letter(
        self, entity: Entity, message: StoredMessage, reason: str | None, text: str | None
    ) -> None:
        """Move a message to its entity's dead-letter queue (or where dead letters are forwarded)."""
        bus = self._bus
        entity.remove(message.seq)
        bus.journal.delete(entity.path, message.seq)
        env = with_dead_letter(message.env, reason, text)
        forward = entity.settings.forward_dead_letters_to
        if forward and forward in bus.entities:
            self.route(bus.entities[forward], bus.take_seq(), env, bus.now_ms(), 1)
            return
        dlq = entity.dead_letter
        if dlq is None:  # pragma: no cover - settle refuses it, and a dead-letter queue never expires
            raise AssertionError(f"{entity.path} has no dead-letter queue to move a message to")
        moved = StoredMessage(message.seq, env, message.enqueued_ms, None, message.delivery_count)
        dlq.add(moved)
        bus.journal.insert(dlq.path, moved)
        bus.delivery.dispatch(dlq, None)

    def run_timers(self, now: int) -> None:
        """Activate due scheduled messages and expire messages whose TTL has passed."""
        self._activate_due(now)
        self._expire_due(now)

    def next_timer_ms(self) -> int | None:
        """When ``run_timers`` next has work, if ever."""
        heads = [heap[0][0] for heap in (self._scheduled, self._expiring) if heap]
        return min(heads) if heads else None

    def _activate_due(self, now: int) -> None:
        while self._scheduled and self._scheduled[0][0] <= now:
            _, path, seq = heapq.heappop(self._scheduled)
            target = self._bus.entities.get(path)  # None: the entity was deleted since
            message = target.messages.get(seq) if target is not None else None
            if target is None or message is None or message.state != SCHEDULED:
                continue
            target.messages.pop(seq)
            self._bus.journal.delete(path, seq)
            self.route(target, seq, message.env, now)

    def _expire_due(self, now: int) -> None:
        while self._expiring and self._expiring[0][0] <= now:
            _, path, seq = heapq.heappop(self._expiring)
            entity = self._bus.entities.get(path)  # None: the entity was deleted since
            if entity is None:
                continue
            message = entity.messages.get(seq)
            # A locked message expires when its lock ends or it is settled, as in Azure.
            if message is not None and message.state == ACTIVE and message.lock_token is None:
                self.expire(entity, message)


def _effective_ttl(message_ttl: int | None, entity_ttl: int | None) -> int | None:
    if message_ttl is None:
        return entity_ttl
    return message_ttl if entity_ttl is None else min(message_ttl, entity_ttl)
