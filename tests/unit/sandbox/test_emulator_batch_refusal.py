"""A batch sent to a topic is refused whole when one message's user properties cannot be read."""

from __future__ import annotations

import pytest

from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.config import (
    EmulatorConfig,
    NamespaceConfig,
    RuleConfig,
    SqlFilterConfig,
    SubscriptionConfig,
    TopicConfig,
)
from dualbus.sandbox.servicebus.errors import AmqpDecodeError
from dualbus.sandbox.servicebus.message import parse_message
from dualbus.sandbox.servicebus.store import MemoryJournal
from dualbus.sandbox.servicebus.topology import build_topology

_DATA = b"\x00\x53\x75\xa0\x02hi"
# application-properties: a map of one pair whose value has the unknown type code 0xff.
_BAD_APP = b"\x00\x53\x74\xc1\x05\x02\xa1\x01k\xff"
_GOOD_APP = b"\x00\x53\x74\xc1\x07\x02\xa1\x01k\xa1\x01v"


def _bus() -> ServiceBus:
    rule = RuleConfig(name="k", filter=SqlFilterConfig(expression="k = 'v'"))
    topic = TopicConfig(name="t", subscriptions=[SubscriptionConfig(name="s", rules=[rule])])
    topology = build_topology(
        EmulatorConfig(namespaces=[NamespaceConfig(name="ns", queues=[], topics=[topic])])
    )
    return ServiceBus(topology.entities, topology.routes, MemoryJournal())


def test_a_malformed_user_property_map_refuses_the_batch_before_any_message_is_stored():
    bus = _bus()
    good, bad = parse_message(_GOOD_APP + _DATA), parse_message(_BAD_APP + _DATA)
    with pytest.raises(AmqpDecodeError):
        bus.intake.check_sendable("t", [good, bad])
    assert bus.entity("t/subscriptions/s").messages == {}


def test_a_well_formed_batch_is_routed_by_its_user_properties():
    bus = _bus()
    envs = [parse_message(_GOOD_APP + _DATA)]
    bus.intake.check_sendable("t", envs)
    bus.intake.send("t", envs[0])
    assert len(bus.entity("t/subscriptions/s").messages) == 1
