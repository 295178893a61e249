"""Each topic's unroutable subscription takes exactly what none of its direction subscriptions takes."""

from __future__ import annotations

import itertools

import pytest

from dualbus.sandbox.servicebus.filters import compile_sql_filter
from dualbus.shared.routing import REPLAY_TARGET_PROPERTY
from dualbus.shared.topology import TopicSpec, default_topology

ORIGINS = (None, "fo", "dataverse", "FO", "", "sap", "fo ")
TARGETS = (None, "to-dataverse", "to-fo", "unroutable", "audit", "")
SESSIONS = (None, "customer-0001")


def _messages():
    for origin, target, session in itertools.product(ORIGINS, TARGETS, SESSIONS):
        pairs = (("origin", origin), (REPLAY_TARGET_PROPERTY, target))
        yield {"SessionId": session}, {name: value for name, value in pairs if value is not None}


def _takers(topic: TopicSpec, system: dict, user: dict) -> list[str]:
    return [sub.name for sub in topic.all_subscriptions if compile_sql_filter(sub.rule_sql)(system, user)]


@pytest.mark.parametrize("topic", default_topology().topics, ids=lambda t: t.area)
def test_every_text_message_reaches_exactly_one_subscription(topic: TopicSpec) -> None:
    """Whatever its origin, replay target and session, a message goes to one direction or to unroutable."""
    for system, user in _messages():
        takers = _takers(topic, system, user)
        assert len(takers) == 1, (system, user, takers)


def test_a_change_with_a_session_goes_to_its_direction_only() -> None:
    """An F&O change with a session id reaches to-dataverse and nothing else."""
    topic = default_topology().topic("customer")
    assert _takers(topic, {"SessionId": "customer-0001"}, {"origin": "fo"}) == ["to-dataverse"]


@pytest.mark.parametrize(
    ("system", "user", "expected"),
    [
        ({"SessionId": "s"}, {}, "origin is missing; this topic's subscriptions take 'fo'"),
        ({"SessionId": "s"}, {"origin": "FO"}, "origin is str 'FO'"),
        ({"SessionId": None}, {"origin": "fo"}, "no session id, which subscription 'to-dataverse' needs"),
        ({"SessionId": "s"}, {"origin": "dataverse"}, "origin is str 'dataverse'; this topic's"),
        ({"SessionId": "s"}, {"origin": "fo", REPLAY_TARGET_PROPERTY: "to-fo"}, "addressed to str 'to-fo'"),
    ],
)
def test_the_description_says_why_nothing_took_it(system: dict, user: dict, expected: str) -> None:
    """The unroutable description names the property or session id that kept the message from routing."""
    topic = default_topology().topic("company")
    assert _takers(topic, system, user) == ["unroutable"]
    assert expected in topic.unroutable.why(user, system["SessionId"])


def test_a_non_text_origin_is_unknown_to_every_rule() -> None:
    """Known limit: rules compare text with text, so a numeric origin matches no rule, the catch-all's too."""
    topic = default_topology().topic("customer")
    assert _takers(topic, {"SessionId": "s"}, {"origin": 7}) == []
