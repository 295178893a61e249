"""The topology validates itself against its rules and Service Bus's limits, and renders Config.json."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dualbus.shared.errors import TopologyError
from dualbus.shared.render import iso_duration, render_emulator_config
from dualbus.shared.topology import Direction, SubscriptionSpec, TopicSpec, Topology, default_topology


def test_default_topology_has_both_directions_for_two_way_areas() -> None:
    """Two-way areas get a subscription per direction; one-way areas only to Dataverse."""
    topology = default_topology()
    assert topology.areas == ("company", "currency", "organisation", "customer", "vendor", "product")
    customer = topology.topic("customer")
    assert {s.direction for s in customer.subscriptions} == set(Direction)
    for one_way in ("company", "organisation", "product"):
        assert [s.direction for s in topology.topic(one_way).subscriptions] == [Direction.TO_DATAVERSE]
    assert len(topology.routes()) == 9


def test_subscription_rule_selects_changes_from_the_other_side() -> None:
    """The to-fo subscription takes Dataverse's changes with a session (and its own replays)."""
    to_fo = SubscriptionSpec(direction=Direction.TO_FO).rule_sql
    assert to_fo == (
        "origin = 'dataverse' AND sys.SessionId IS NOT NULL AND "
        "(dualbus_replay_to IS NULL OR dualbus_replay_to = 'to-fo')"
    )
    assert SubscriptionSpec(direction=Direction.TO_DATAVERSE).rule_sql.startswith("origin = 'fo' AND")
    sessionless = SubscriptionSpec(direction=Direction.TO_FO, requires_session=False).rule_sql
    assert "SessionId" not in sessionless


def test_unknown_area_is_refused() -> None:
    """A topic for an area dualbus does not know is a TopologyError naming the area."""
    raw = {"topics": [{"area": "payroll", "subscriptions": [{"direction": "to-fo"}]}]}
    with pytest.raises(TopologyError, match="unknown area 'payroll'"):
        Topology.parse(raw)


def test_duplicate_area_is_refused() -> None:
    """The same area twice is refused."""
    topic = {"area": "customer", "subscriptions": [{"direction": "to-fo"}]}
    with pytest.raises(TopologyError, match="areas defined twice: customer"):
        Topology.parse({"topics": [topic, topic]})


def test_duplicate_direction_is_refused() -> None:
    """Two subscriptions for one direction would split its messages; refused."""
    raw = {
        "topics": [{"area": "customer", "subscriptions": [{"direction": "to-fo"}, {"direction": "to-fo"}]}]
    }
    with pytest.raises(TopologyError, match="two subscriptions for one direction"):
        Topology.parse(raw)


def test_lock_duration_over_five_minutes_is_refused() -> None:
    """Service Bus caps the lock duration at 5 minutes."""
    with pytest.raises(ValueError, match="lock_duration"):
        SubscriptionSpec(direction=Direction.TO_FO, lock_duration=timedelta(minutes=6))


def test_dedup_window_below_twenty_seconds_is_refused() -> None:
    """Service Bus's duplicate detection window is at least 20 seconds."""
    with pytest.raises(ValueError, match="duplicate_detection_window"):
        TopicSpec(
            area="customer",
            subscriptions=(SubscriptionSpec(direction=Direction.TO_FO),),
            duplicate_detection_window=timedelta(seconds=5),
        )


def test_unknown_area_lookup_names_the_known_ones() -> None:
    """Asking for an area the topology lacks says which areas exist."""
    with pytest.raises(TopologyError, match="company, currency"):
        default_topology().topic("payroll")


def test_missing_direction_is_a_topology_error() -> None:
    """Asking a one-way area for the other direction is a clear error."""
    with pytest.raises(TopologyError, match="no to-fo subscription"):
        default_topology().topic("product").subscription(Direction.TO_FO)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(minutes=1), "PT1M"),
        (timedelta(days=14), "P14D"),
        (timedelta(seconds=20), "PT20S"),
        (timedelta(days=1, hours=2, seconds=3), "P1DT2H3S"),
        (timedelta(0), "PT0S"),
    ],
)
def test_iso_duration(value: timedelta, expected: str) -> None:
    """Durations render in ISO 8601 as Service Bus writes them."""
    assert iso_duration(value) == expected


def test_emulator_config_has_every_topic_subscription_and_rule() -> None:
    """The rendered Config.json holds one topic per area and one filtered subscription per direction."""
    topology = default_topology()
    config = render_emulator_config(topology)
    (namespace,) = config["UserConfig"]["Namespaces"]
    topics = {topic["Name"]: topic for topic in namespace["Topics"]}
    assert set(topics) == {topic.name for topic in topology.topics}
    customer = topics["dualbus.customer"]
    assert customer["Properties"]["RequiresDuplicateDetection"] is True
    subscriptions = {s["Name"]: s for s in customer["Subscriptions"]}
    assert set(subscriptions) == {"to-dataverse", "to-fo", "unroutable"}
    assert subscriptions["unroutable"]["Properties"]["RequiresSession"] is False
    catch_all = subscriptions["unroutable"]["Rules"][0]["Properties"]["SqlFilter"]["SqlExpression"]
    assert catch_all == topology.topic("customer").unroutable.rule_sql
    rule = subscriptions["to-fo"]["Rules"][0]["Properties"]
    assert rule == {
        "FilterType": "Sql",
        "SqlFilter": {"SqlExpression": SubscriptionSpec(direction=Direction.TO_FO).rule_sql},
    }
    assert subscriptions["to-fo"]["Properties"]["RequiresSession"] is True
    assert subscriptions["to-fo"]["Properties"]["LockDuration"] == "PT1M"


def test_control_queue_commands_never_expire() -> None:
    """A pause command stays on the control queue until a later one replaces it: the queue's TTL is Azure's
    "never" (TimeSpan.MaxValue cut to whole seconds), and an expired command would be dropped, not kept."""
    config = render_emulator_config(default_topology())
    (queue,) = config["UserConfig"]["Namespaces"][0]["Queues"]
    assert queue["Properties"]["DefaultMessageTimeToLive"] == "P10675199DT2H48M5S"
    assert queue["Properties"]["RequiresSession"] is False
    assert queue["Properties"]["RequiresDuplicateDetection"] is False
