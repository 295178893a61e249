"""Entity links end with the tokens that let them in: a token put since carries them on, an Entra ID token's
``exp`` counts as a SAS token's ``se`` does (sandbox/servicebus/link_tokens.py)."""

from __future__ import annotations

import secrets

import pytest
from proton import Connection, Link

from dualbus.sandbox.identity import TokenIssuer
from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.config import EmulatorConfig, NamespaceConfig, QueueConfig
from dualbus.sandbox.servicebus.connections import ConnectionState
from dualbus.sandbox.servicebus.errors import BrokerError
from dualbus.sandbox.servicebus.link_tokens import UNAUTHORIZED, LinkTokens, check_token
from dualbus.sandbox.servicebus.sas import (
    DEFAULT_KEY_NAME,
    DEFAULT_KEY_VALUE,
    ENTRA_AUDIENCE,
    SEND,
    KeyRing,
    make_token,
)
from dualbus.sandbox.servicebus.store import MemoryJournal
from dualbus.sandbox.servicebus.topology import build_topology

AUDIENCE = "sb://127.0.0.1:5672/q"
START_S = 1_000_000.0


class _Clock:
    """The broker's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = START_S

    def __call__(self) -> float:
        return self.now


def _bus(clock: _Clock) -> ServiceBus:
    namespace = NamespaceConfig(name="ns", queues=[QueueConfig(name="q")], topics=[])
    topology = build_topology(EmulatorConfig(namespaces=[namespace]))
    return ServiceBus(topology.entities, topology.routes, MemoryJournal(), clock=clock)


def _open_link(state: ConnectionState) -> Link:
    """Our end of a client's sending link, on a connection holding ``state``."""
    connection = Connection()
    connection.sb_state = state
    link = connection.session().receiver("client-sender")
    link.open()
    return link


def _put_token(state: ConnectionState, clock: _Clock, lifetime_s: int) -> None:
    """What a put-token on $cbs keeps: the grant of a SAS token for the queue."""
    token = make_token(AUDIENCE, DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE, int(clock.now) + lifetime_s)
    state.grants.append(KeyRing(clock=clock).verify(token, AUDIENCE))


def _sas_link(lifetime_s: int) -> tuple[_Clock, ConnectionState, ServiceBus, Link]:
    """A sending link to queue ``q`` let in by a SAS token that expires ``lifetime_s`` from now."""
    clock, state = _Clock(), ConnectionState()
    bus = _bus(clock)
    _put_token(state, clock, lifetime_s)
    link = _open_link(state)
    LinkTokens(bus).authorize(link, "q", SEND)
    return clock, state, bus, link


def _run_timers(bus: ServiceBus, clock: _Clock, at_s: float) -> None:
    clock.now = at_s
    bus.timers(bus.now_ms())


def test_a_token_put_before_expiry_carries_the_link_on_to_its_own_expiry():
    """A second token for the same audience keeps the link past the first one's expiry, until its own."""
    clock, state, bus, link = _sas_link(60)
    _put_token(state, clock, 120)
    _run_timers(bus, clock, START_S + 61)
    assert link.state & Link.LOCAL_ACTIVE
    _run_timers(bus, clock, START_S + 121)
    assert link.state & Link.LOCAL_CLOSED
    assert link.condition.name == "amqp:link:detach-forced"
    assert "Code: RenewToken" in link.condition.description


def test_an_entra_token_expiry_ends_the_links_it_let_in():
    """The link an Entra ID token let in is detached once the token's ``exp`` has passed."""
    issuer = TokenIssuer(
        signing_key=secrets.token_urlsafe(32), clients={"app": "secret"}, lifetime_seconds=60
    )
    token = issuer.issue(client_id="app", client_secret="secret", scope=ENTRA_AUDIENCE + "/.default")
    grant = KeyRing(entra=issuer).verify_entra(str(token["access_token"]))
    clock, state = _Clock(), ConnectionState(grants=[grant])
    clock.now = grant.expiry - 30
    bus = _bus(clock)
    link = _open_link(state)
    LinkTokens(bus).authorize(link, "q", SEND)
    _run_timers(bus, clock, grant.expiry - 1)
    assert link.state & Link.LOCAL_ACTIVE
    _run_timers(bus, clock, grant.expiry)
    assert link.state & Link.LOCAL_CLOSED


def test_a_transfer_after_expiry_is_refused_before_the_timers_drop_the_link():
    """Between the token's expiry and the timers reaching it, a transfer on the link is refused."""
    clock, _, bus, link = _sas_link(60)
    check_token(link, bus.now_ms())
    clock.now = START_S + 60
    with pytest.raises(BrokerError) as refused:
        check_token(link, bus.now_ms())
    assert refused.value.condition == UNAUTHORIZED


def test_a_token_for_another_node_carries_no_link_on():
    """A later token for another queue leaves the link to end with the token that let it in."""
    clock, state, bus, link = _sas_link(60)
    other = "sb://127.0.0.1:5672/q2"
    token = make_token(other, DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE, int(clock.now) + 600)
    state.grants.append(KeyRing(clock=clock).verify(token, other))
    _run_timers(bus, clock, START_S + 61)
    assert link.state & Link.LOCAL_CLOSED


def test_a_closed_connection_lets_go_of_its_token_alarms():
    """A lost connection's alarms let go of its state at once, rather than hold it for the token's hour and
    wake the broker for nothing then (a consumer opens connections by the thousand)."""
    clock, state, bus, link = _sas_link(3600)
    [alarm] = state.token_alarms.values()
    state.lose(bus)
    assert (alarm.call, state.token_alarms, state.grants) == (None, {}, [])
    _run_timers(bus, clock, START_S + 3601)
    assert link.state & Link.LOCAL_ACTIVE  # nothing rang for the closed connection
