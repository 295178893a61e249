"""What a departing connection or link gives back: session locks, message locks and session waits."""

from __future__ import annotations

import types
from typing import Any

from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.config import EmulatorConfig, NamespaceConfig, QueueConfig
from dualbus.sandbox.servicebus.connections import ConnectionState
from dualbus.sandbox.servicebus.links import LinkConsumer
from dualbus.sandbox.servicebus.message import PROPERTY_NAMES, SentMessage
from dualbus.sandbox.servicebus.store import MemoryJournal
from dualbus.sandbox.servicebus.topology import build_topology

NOW_S = 1_000_000.0


class _Link:
    """Just enough of a proton sending link for the broker to deliver on: credit and a delivery."""

    def __init__(self, credit: int) -> None:
        self.credit = credit
        self.sent = 0

    def delivery(self, _tag: bytes) -> Any:
        self.credit -= 1
        self.sent += 1
        return types.SimpleNamespace()

    def stream(self, _payload: bytes) -> None:
        """Bytes go nowhere."""

    def advance(self) -> None:
        """Nothing to advance."""


def _bus() -> ServiceBus:
    queues = [QueueConfig(name="plain"), QueueConfig(name="ordered", requires_session=True)]
    config = EmulatorConfig(namespaces=[NamespaceConfig(name="ns", queues=queues, topics=[])])
    topology = build_topology(config)
    return ServiceBus(topology.entities, topology.routes, MemoryJournal(), clock=lambda: NOW_S)


def _send(bus: ServiceBus, path: str, session_id: str | None = None) -> None:
    properties: list[Any] = [None] * len(PROPERTY_NAMES)
    properties[10] = session_id
    bus.intake.send(path, SentMessage(bare=b"\x00\x53\x75\xa0\x01x", properties=tuple(properties)))


def _receiver(
    bus: ServiceBus, state: ConnectionState, path: str, session_id: str | None = None
) -> LinkConsumer:
    """A peek-lock receiver on ``path`` (holding ``session_id`` if given), counted as ``state``'s."""
    entity = bus.entity(path)
    consumer = LinkConsumer(_Link(credit=1), entity, peek_lock=True, session_id=session_id)  # type: ignore[arg-type]
    state.add_consumer(consumer)
    if session_id is not None:
        bus.sessions.accept_session(entity, consumer, session_id)
    entity.consumers.append(consumer)
    bus.delivery.dispatch(entity, session_id)
    return consumer


def test_lost_connection_frees_its_session_and_charges_a_delivery() -> None:
    """The session lock goes with the connection; its message is ready again with one delivery counted."""
    bus, state = _bus(), ConnectionState()
    _send(bus, "ordered", "s-1")
    _receiver(bus, state, "ordered", "s-1")
    state.lose(bus)
    entity = bus.entity("ordered")
    assert entity.session_locks == {}
    assert entity.locks == {}
    assert [m.delivery_count for m in entity.messages.values()] == [1]
    assert list(entity.free_sessions(bus.now_ms())) == ["s-1"]


def test_lost_connection_returns_locks_its_closed_links_left_behind() -> None:
    """A closed link's message locks stay (they may still be settled) until its connection goes."""
    bus, state = _bus(), ConnectionState()
    _send(bus, "plain")
    consumer = _receiver(bus, state, "plain")
    state.link_closed(bus, consumer)
    entity = bus.entity("plain")
    assert len(entity.locks) == 1
    state.lose(bus)
    assert entity.locks == {}
    assert entity.ready_count() == 1


def test_closed_session_link_frees_its_session_without_a_charge() -> None:
    """Closing a session receiver's link frees the session at once and counts no delivery."""
    bus, state = _bus(), ConnectionState()
    _send(bus, "ordered", "s-1")
    consumer = _receiver(bus, state, "ordered", "s-1")
    state.link_closed(bus, consumer)
    entity = bus.entity("ordered")
    assert entity.session_locks == {}
    assert [m.delivery_count for m in entity.messages.values()] == [0]


def test_released_message_goes_to_another_live_receiver() -> None:
    """A message freed by a lost connection is handed to a receiver of another connection at once."""
    bus, leaving, staying = _bus(), ConnectionState(), ConnectionState()
    _send(bus, "plain")
    _receiver(bus, leaving, "plain")
    other = _receiver(bus, staying, "plain")
    leaving.lose(bus)
    assert other.link.sent == 1  # type: ignore[attr-defined]


def test_receiver_waiting_for_a_session_on_a_lost_connection_gets_none() -> None:
    """A next-available wait ends with its connection, so no session is locked for a dead receiver."""
    bus, state = _bus(), ConnectionState()
    entity = bus.entity("ordered")
    consumer = LinkConsumer(_Link(credit=1), entity, peek_lock=True)  # type: ignore[arg-type]
    state.add_consumer(consumer)
    handed: list[str | None] = []
    bus.sessions.wait_for_session(
        entity, consumer, bus.now_ms() + 60_000, lambda sid, _until: handed.append(sid)
    )
    state.lose(bus)
    _send(bus, "ordered", "s-1")
    assert handed == []
    assert entity.session_locks == {}


def test_sessions_freed_at_once_go_one_to_each_waiter_though_a_hand_over_calls_back() -> None:
    """Two receivers wait and two sessions come free at once (their holder's connection went): handing the
    first over opens its link, which looks for sessions again and serves the second waiter then. The first
    round goes on from what is free and waiting now, where it served the second waiter again and failed."""
    bus, holder = _bus(), ConnectionState()
    _send(bus, "ordered", "s-1")
    _send(bus, "ordered", "s-2")
    _receiver(bus, holder, "ordered", "s-1")
    _receiver(bus, holder, "ordered", "s-2")
    entity = bus.entity("ordered")
    handed: list[tuple[str, str | None]] = []

    def waiting(name: str) -> None:
        def on_session(session_id: str | None, _until: int) -> None:
            handed.append((name, session_id))
            bus.sessions.on_session_ready(entity)  # the receiver's link opens and dispatches

        consumer = LinkConsumer(_Link(credit=1), entity, peek_lock=True)  # type: ignore[arg-type]
        bus.sessions.wait_for_session(entity, consumer, bus.now_ms() + 60_000, on_session)

    waiting("first")
    waiting("second")
    holder.lose(bus)
    assert sorted(handed) == [("first", "s-1"), ("second", "s-2")]
    assert bus.sessions.waiters == []
