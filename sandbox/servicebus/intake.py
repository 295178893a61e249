"""Accepting messages: sends and schedules checked against their target, and duplicate detection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dualbus.sandbox.servicebus.entity import SCHEDULED, Entity
from dualbus.sandbox.servicebus.errors import BrokerError
from dualbus.sandbox.servicebus.message import SentMessage

if TYPE_CHECKING:
    from dualbus.sandbox.servicebus.bus import ServiceBus

__all__ = ["Intake"]


class Intake:
    """What senders do: send (once per message id within the window), schedule and cancel."""

    def __init__(self, bus: ServiceBus) -> None:
        self._bus = bus
        self._dedup: dict[str, dict[str, int]] = {}

    def check_sendable(self, path: str, envs: list[SentMessage]) -> Entity:
        """The target of a send, or BrokerError before anything of a batch is stored."""
        target = self._bus.entity(path)
        if (target.dead_letter is None and not target.is_topic) or "/subscriptions/" in path:
            raise BrokerError("amqp:not-allowed", f"Cannot send to '{path}': send to its queue or topic.")
        # Sessions on: "All messages must be sent as part of a session (by setting the session id)",
        # https://github.com/MicrosoftDocs/azure-docs/blob/01256f9454e5bf1dc3d783779a6e2412609b07c9/articles/service-bus-messaging/message-sessions.md
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
        bus = self._bus
        target = self.check_sendable(path, [env])
        if self._is_duplicate(target, env):
            return None
        seq = bus.take_seq()
        if env.scheduled_ms is not None and env.scheduled_ms > bus.now_ms():
            bus.placement.hold_scheduled(target, seq, env)
        else:
            bus.placement.route(target, seq, env, bus.now_ms())
        return seq

    def _is_duplicate(self, target: Entity, env: SentMessage) -> bool:
        window = target.settings.duplicate_window_ms
        message_id = env.message_id
        if window is None or message_id is None:
            return False
        now = self._bus.now_ms()
        seen = self._dedup.setdefault(target.path, {})
        if seen.get(message_id, 0) > now:
            return True
        seen[message_id] = now + window
        self._bus.journal.dedup(target.path, message_id, now + window)
        return False

    def remember_dedup(self, path: str, message_id: str, expires_ms: int) -> None:
        """Restore one duplicate-detection entry at start-up."""
        self._dedup.setdefault(path, {})[message_id] = expires_ms

    def schedule(self, path: str, envs: list[SentMessage]) -> list[int]:
        """Hold messages until their scheduled enqueue time; return their sequence numbers.

        A schedule is a send that waits: the same checks refuse the whole request before anything is held
        (a session entity takes only messages with a session id, see ``check_sendable``), and duplicate
        detection drops a repeated message id, scheduled or sent, either way round: "Scheduled messages are
        included in duplicate detection",
        https://github.com/MicrosoftDocs/azure-docs/blob/01dd3ac240beeadcd2f2171458810d38be6068a0/articles/service-bus-messaging/duplicate-detection.md
        """
        target = self.check_sendable(path, envs)
        numbers = []
        for env in envs:
            # A dropped duplicate still gets a number, one that names no message: the answer keeps one number
            # per message asked for (what Azure answers for it is not documented).
            seq = self._bus.take_seq()
            if not self._is_duplicate(target, env):
                self._bus.placement.hold_scheduled(target, seq, env)
            numbers.append(seq)
        return numbers

    def cancel_scheduled(self, path: str, numbers: list[int]) -> None:
        """Drop scheduled messages; unknown numbers are an error, as in Azure."""
        target = self._bus.entity(path)
        for seq in numbers:
            message = target.messages.get(seq)
            if message is None or message.state != SCHEDULED:
                raise BrokerError(
                    "com.microsoft:message-not-found", f"No scheduled message {seq}.", status=404
                )
            target.remove(seq)
            self._bus.journal.delete(target.path, seq)
