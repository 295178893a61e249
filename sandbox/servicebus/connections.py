"""What one client connection holds: its token grants and the links they authorized, its receiving links and
the locks taken through them.

Azure frees what a connection held as soon as it closes or its transport drops: its session locks (a new
receiver can accept the session at once) and its message locks (the messages are available again, their
delivery count raised). Keeping them until the lock duration ran out would stall a restarted consumer for
a minute, so ``ConnectionState.lose`` frees them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proton import Connection, Link

from dualbus.sandbox.servicebus.alarms import Alarm
from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.entity import Entity
from dualbus.sandbox.servicebus.links import LinkConsumer
from dualbus.sandbox.servicebus.sas import Grant

__all__ = ["ConnectionState", "state_of"]


@dataclass(eq=False)
class ConnectionState:
    """One AMQP connection's grants, the links they authorized, its receivers and the locks its closed links
    left behind."""

    grants: list[Grant] = field(default_factory=list)
    # The open entity links a token authorized, each watched until its token expires (link_tokens.py).
    authorized: set[Link] = field(default_factory=set)
    # The alarm set for each distinct token expiry (one however many links it covers), by its time.
    token_alarms: dict[int, Alarm] = field(default_factory=dict)
    consumers: list[LinkConsumer] = field(default_factory=list)
    # Every entity this connection received from, through a receiving link or its $management node.
    entities: set[Entity] = field(default_factory=set)
    lost: bool = False

    def add_consumer(self, consumer: LinkConsumer) -> None:
        """Count a receiving link as this connection's."""
        self.consumers.append(consumer)
        self.entities.add(consumer.entity)

    def link_closed(self, bus: ServiceBus, consumer: LinkConsumer) -> None:
        """A receiving link detached: its sessions are free at once, its message locks stay with us.

        A message lock outlives its link (the SDK may still settle through ``$management``), but not the
        connection: handing the locks to the connection lets ``lose`` find them.
        """
        if consumer in self.consumers:
            self.consumers.remove(consumer)
        if not stop(bus, consumer):
            return
        if consumer.entity.sessionful:
            bus.settlement.release_held(consumer.entity, {consumer}, failed=False)
        else:
            bus.settlement.hand_over(consumer.entity, consumer, self)

    def lose(self, bus: ServiceBus) -> None:
        """The connection closed or its transport dropped: free every session and message lock it held."""
        if self.lost:
            return
        self.lost = True
        holders: set[object] = {self, *self.consumers}
        for consumer in self.consumers:
            stop(bus, consumer)
        # A lock the client can no longer settle is a failed delivery, as when the lock expires.
        for entity in self.entities:
            bus.settlement.release_held(entity, holders, failed=True)
        self.consumers.clear()
        self.entities.clear()
        self.authorized.clear()
        # Its token alarms let go of this state now, not an hour later when they would have rung.
        for alarm in self.token_alarms.values():
            alarm.cancel()
        self.token_alarms.clear()
        self.grants.clear()


def stop(bus: ServiceBus, consumer: LinkConsumer) -> bool:
    """Stop delivering to ``consumer`` and end its wait for a session; False if it was already stopped."""
    if consumer.closed:
        return False
    consumer.closed = True
    if consumer in consumer.entity.consumers:
        consumer.entity.consumers.remove(consumer)
    bus.sessions.cancel_wait(consumer)
    return True


def state_of(connection: Connection | Link) -> ConnectionState | None:
    """The state of a connection (or of a link's connection); None before it opened."""
    if isinstance(connection, Link):
        connection = connection.connection
    found: ConnectionState | None = getattr(connection, "sb_state", None)
    return found
