"""Status counts per route, with ages and the backlog trend between two samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dualbus.commands.common import format_age
from dualbus.ops.status import collect_status, with_rates
from dualbus.shared.bus_admin import SubscriptionCounts
from dualbus.shared.topology import default_topology

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class FakeCounts:
    """Counts per subscription, as the administration API would report them."""

    def __init__(self, active: dict[tuple[str, str], int]) -> None:
        self.active = active

    def subscription(self, topic: str, subscription: str) -> SubscriptionCounts:
        return SubscriptionCounts(
            active=self.active.get((topic, subscription), 0),
            dead_lettered=2 if subscription == "to-fo" else 0,
            accessed_at=NOW - timedelta(seconds=30),
        )

    def scheduled(self, topic: str) -> int:
        return 1 if topic == "dualbus.customer" else 0


def test_every_route_is_reported_with_its_counts_and_ages() -> None:
    """One status per subscription (unroutable ones included), with counts, scheduled count and ages."""
    topology = default_topology()
    oldest = {("customer", "to-fo"): NOW - timedelta(hours=3)}
    statuses = collect_status(
        FakeCounts({("dualbus.customer", "to-dataverse"): 40}), topology, now=NOW, oldest_dead_letters=oldest
    )
    assert len(statuses) == len(topology.subscriptions()) == len(topology.routes()) + len(topology.topics)
    customer = {s.subscription: s for s in statuses if s.area == "customer"}
    assert customer["to-dataverse"].active == 40
    assert customer["to-dataverse"].scheduled == 1
    assert customer["to-fo"].dead_lettered == 2
    assert customer["to-fo"].oldest_dead_letter == timedelta(hours=3)
    assert customer["to-dataverse"].oldest_dead_letter is None
    assert customer["to-dataverse"].last_read == timedelta(seconds=30)


def test_trend_is_the_backlog_change_per_second() -> None:
    """A backlog that shrinks from 40 to 10 in 2 s drains at 15 messages a second."""
    topology = default_topology()
    key = ("dualbus.customer", "to-dataverse")
    first = collect_status(FakeCounts({key: 40}), topology, now=NOW)
    second = collect_status(FakeCounts({key: 10}), topology, now=NOW)
    rated = {(s.area, s.subscription): s for s in with_rates(first, second, 2.0)}
    assert rated[("customer", "to-dataverse")].backlog_change_per_second == -15.0
    assert rated[("vendor", "to-fo")].backlog_change_per_second == 0.0
    assert rated[("customer", "to-dataverse")].as_dict()["last_read_seconds"] == 30.0


def test_ages_are_short() -> None:
    """Table ages read as seconds, minutes, hours or days."""
    assert format_age(None) == "-"
    assert format_age(timedelta(seconds=45)) == "45s"
    assert format_age(timedelta(minutes=12, seconds=5)) == "12m"
    assert format_age(timedelta(days=2, hours=1)) == "2d"
