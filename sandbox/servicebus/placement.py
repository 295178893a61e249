"""Putting messages into entities and taking them out when their time comes.

Topic fan-out through subscription rules, auto-forwarding, TTL (with optional dead-lettering), dead-letter
queues, and scheduled messages becoming active at their time.

Every entity's default TTL is a ceiling for the TTL of each message put into it, topics and forwarding
entities included: "The default expiration also functions as a ceiling for the TimeToLive value. Messages
that have a longer TimeToLive expiration than the default value are silently adjusted to the
defaultMessageTimeToLive value before being enqueued",
https://github.com/MicrosoftDocs/azure-docs/blob/010746ea2079ef930a6b8f6aa7daa307160f65f1/articles/service-bus-messaging/message-expiration.md
So the ceilings a message met on its way travel with it (``ttl_cap``) to the entity that keeps it. Only its
expiry is adjusted: the TTL a receiver reads is the one the sender set.
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

# A session entity cannot hold a message without a session id. A queue refuses the send (see
# ``Intake.check_sendable``); a subscription, whose topic's sender is not refused for it, dead-letters the
# message with this reason and description (and so does a session queue such a message is forwarded to,
# a case Azure documents no wording for). The current table of system reasons spells the reason
# "Session ID is null.",
# https://github.com/MicrosoftDocs/azure-docs/blob/01e30bd33d9db828ebab1cfa5ad9ba0aa4f3ebc4/articles/service-bus-messaging/service-bus-dead-letter-queues.md
# but its 2018 version, whose table names the condition (SubscriptionDescription.RequiresSession), spells
# it "Session id is null.",
# https://github.com/MicrosoftDocs/azure-docs/blob/e2a866a7602194564f176a353eb46fae720bab1e/articles/service-bus-messaging/service-bus-dead-letter-queues.md
# and so does a dead letter a user got from Azure, https://github.com/Azure/azure-service-bus/issues/196.
# The later spelling looks like a copy edit of the page rather than a change of the broker: the broker's
# observed value is kept.
_NO_SESSION_REASON = "Session id is null."
_NO_SESSION_TEXT = "Session enabled entity doesn't allow a message whose session identifier is null."


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

    def route(
        self,
        target: Entity,
        seq: int,
        env: SentMessage,
        now: int,
        *,
        hops: int = 0,
        ttl_cap: int | None = None,
    ) -> None:
        """Enqueue a message on a queue, or a copy on each subscription of a topic whose rules admit it.

        ``ttl_cap``: the shortest default TTL of the entities the message passed through to get here.
        """
        if target.is_topic:
            cap = _shorter(ttl_cap, target.settings.ttl_ms)
            for route in self._bus.routes.get(target.path, []):
                for index, copy in enumerate(route.copies(env)):
                    # Extra copies (one per rule action) are distinct messages with numbers of their own.
                    number = seq if index == 0 else self._bus.take_seq()
                    self.enqueue(route.subscription, number, copy, now, hops=hops, ttl_cap=cap)
        else:
            self.enqueue(target, seq, env, now, hops=hops, ttl_cap=ttl_cap)

    def enqueue(
        self,
        entity: Entity,
        seq: int,
        env: SentMessage,
        now: int,
        *,
        hops: int = 0,
        ttl_cap: int | None = None,
    ) -> None:
        """Add a message to a queue, subscription or dead-letter queue, following auto-forwarding."""
        bus = self._bus
        cap = _shorter(ttl_cap, entity.settings.ttl_ms)
        forward = entity.settings.forward_to
        if forward and hops < _MAX_FORWARD_HOPS and forward in bus.entities:
            # The destination numbers what it receives, as in Azure: copies of one message forwarded by
            # two subscriptions to one queue are two messages there, not one under a shared number.
            self.route(bus.entities[forward], bus.take_seq(), env, now, hops=hops + 1, ttl_cap=cap)
            return
        if entity.sessionful and env.session_id is None:
            self._dead_letter_session_less(entity, StoredMessage(seq, env, now))
            return
        ttl = _shorter(env.ttl_ms, cap)
        expires = now + ttl if ttl is not None else None
        message = StoredMessage(seq, env, now, expires)
        entity.add(message)
        bus.journal.insert(entity.path, message)
        if expires is not None:
            heapq.heappush(self._expiring, (expires, entity.path, seq))
        bus.delivery.dispatch(entity, env.session_id if entity.sessionful else None)

    def _dead_letter_session_less(self, entity: Entity, message: StoredMessage) -> None:
        """Put a message that a session entity cannot hold straight into its dead-letter queue."""
        self._to_dead_letter_queue(entity, message, _NO_SESSION_REASON, _NO_SESSION_TEXT)

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
        entity.remove(message.seq)
        self._bus.journal.delete(entity.path, message.seq)
        self._to_dead_letter_queue(entity, message, reason, text)

    def _to_dead_letter_queue(
        self, entity: Entity, message: StoredMessage, reason: str | None, text: str | None
    ) -> None:
        """Put a message, already out of ``entity``, in its dead-letter queue or where those are forwarded."""
        bus = self._bus
        env = with_dead_letter(message.env, reason, text)
        forward = entity.settings.forward_dead_letters_to
        if forward and forward in bus.entities:
            self.route(bus.entities[forward], bus.take_seq(), env, bus.now_ms(), hops=1)
            return
        dlq = entity.dead_letter
        if dlq is None:  # pragma: no cover - settle refuses it; a DLQ neither expires nor takes sessions
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
            # "As the message transitions to the active state, the message is appended to the queue as if had
            # been enqueued at the current instant, which includes assigning a new SequenceNumber":
            # https://github.com/MicrosoftDocs/azure-docs/blob/0a03096af4458def337ef0b0607dff7b659f71d9/articles/service-bus-messaging/message-sequencing.md
            self.route(target, self._bus.take_seq(), message.env, now)

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


def _shorter(first: int | None, second: int | None) -> int | None:
    """The shorter of two durations, where None is no limit."""
    if first is None:
        return second
    return first if second is None else min(first, second)
