"""The emulator's Service Bus: its entities, and the parts that act on them, each with one job.

Semantics follow Azure Service Bus. :class:`ServiceBus` holds what every part shares (the entities, the
topic routes, the journal, the clock and the sequence counter) and runs the time-driven rules; the parts:

- ``intake`` (``intake.py``): accepting sends and schedules, duplicate detection;
- ``placement`` (``placement.py``): putting messages into entities (fan-out, forwarding, TTL, dead-letter
  queues) and taking them out when their time comes (scheduled enqueue, expiry);
- ``delivery`` (``delivery.py``): handing ready messages to receivers with credit;
- ``settlement`` (``settlement.py``): message locks, their renewal and expiry, and settlements;
- ``sessions`` (``sessions.py``): session locks, receivers waiting for a session, session state;
- ``alarms`` (``alarms.py``): calls the AMQP layer sets for a time (a link's token expiry).

Single-threaded by design: the server's loop is the only caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dualbus.sandbox.servicebus.alarms import Alarms
from dualbus.sandbox.servicebus.delivery import Delivery
from dualbus.sandbox.servicebus.entity import Entity, StoredMessage
from dualbus.sandbox.servicebus.errors import BrokerError
from dualbus.sandbox.servicebus.intake import Intake
from dualbus.sandbox.servicebus.placement import Placement
from dualbus.sandbox.servicebus.routing import Route
from dualbus.sandbox.servicebus.sessions import Sessions
from dualbus.sandbox.servicebus.settlement import Settlement
from dualbus.sandbox.servicebus.store import Journal

__all__ = ["NOT_FOUND", "ServiceBus"]

NOT_FOUND = "amqp:not-found"


class ServiceBus:
    """All entities of the emulator, what the parts share, and the parts themselves."""

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
        self.intake = Intake(self)
        self.placement = Placement(self)
        self.delivery = Delivery(self)
        self.settlement = Settlement(self)
        self.sessions = Sessions(self)
        self.alarms = Alarms()

    def now_ms(self) -> int:
        """The broker's clock in milliseconds."""
        return int(self.clock() * 1000)

    def entity(self, path: str) -> Entity:
        """The entity at ``path`` (lower case), or BrokerError amqp:not-found."""
        found = self.entities.get(path)
        if found is None:
            raise BrokerError(NOT_FOUND, f"The messaging entity '{path}' could not be found.", status=404)
        return found

    def take_seq(self) -> int:
        """The next sequence number (durable)."""
        seq = self.next_seq
        self.next_seq += 1
        self.journal.next_seq(self.next_seq)
        return seq

    def restore(self, path: str, message: StoredMessage) -> bool:
        """Put a message read from the journal back, unlocked (start-up only); False if ``path`` is not
        an entity of this configuration."""
        return self.placement.restore(path, message)

    def timers(self, now: int) -> None:
        """Run every time-driven rule: schedules, TTL, message and session locks, session waits, alarms."""
        self.placement.run_timers(now)
        self.settlement.expire_locks(now)
        self.sessions.expire(now)
        self.alarms.ring(now)

    def next_deadline_ms(self) -> int | None:
        """The earliest time ``timers`` has work to do."""
        candidates = [
            self.placement.next_timer_ms(),
            self.settlement.next_lock_expiry_ms(),
            self.sessions.next_deadline_ms(),
            self.alarms.next_due_ms(),
        ]
        present = [c for c in candidates if c is not None]
        return min(present) if present else None
