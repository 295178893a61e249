"""Per area and direction: what waits, what was dead-lettered, and whether consumers keep up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from dualbus.shared.bus_admin import SubscriptionCounts
from dualbus.shared.control import RouteState, route_name
from dualbus.shared.topology import UNROUTABLE, Topology

__all__ = ["CountsReader", "RouteStatus", "collect_status", "with_rates"]


class CountsReader(Protocol):
    """Where runtime counts come from (the administration API, in production)."""

    def subscription(self, topic: str, subscription: str) -> SubscriptionCounts:
        """One subscription's counts."""
        ...

    def scheduled(self, topic: str) -> int:
        """Messages scheduled on a topic."""
        ...


@dataclass(frozen=True, slots=True)
class RouteStatus:
    """One consumer route's numbers at one moment."""

    area: str
    subscription: str
    active: int
    dead_lettered: int
    scheduled: int
    oldest_dead_letter: timedelta | None
    last_read: timedelta | None
    # Positive: the backlog grows (consumers fall behind); negative: it drains. None without two samples.
    backlog_change_per_second: float | None = None
    # The route's pause state from the control queue: None when not known (or the unroutable catch-all).
    pause: RouteState | None = None

    @property
    def paused(self) -> bool:
        """Whether an operator (or an alert) paused this route and nobody resumed it."""
        return self.pause is not None and self.pause.paused

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, ages in seconds."""
        return {
            "area": self.area,
            "subscription": self.subscription,
            "active": self.active,
            "dead_lettered": self.dead_lettered,
            "scheduled": self.scheduled,
            "oldest_dead_letter_seconds": _seconds(self.oldest_dead_letter),
            "last_read_seconds": _seconds(self.last_read),
            "backlog_change_per_second": self.backlog_change_per_second,
            "paused": self.paused,
            "paused_by": self.pause.by if self.paused and self.pause else None,
            "paused_reason": self.pause.reason if self.paused and self.pause else None,
        }


def collect_status(
    reader: CountsReader,
    topology: Topology,
    *,
    now: datetime,
    oldest_dead_letters: Mapping[tuple[str, str], datetime | None] | None = None,
    states: Mapping[str, RouteState] | None = None,
) -> list[RouteStatus]:
    """Every subscription's counts (each topic's unroutable one included), in topology order.

    ``states`` are the routes' pause states by route name (``shared.control.read_states``).
    """
    statuses = []
    for topic in topology.topics:
        scheduled = reader.scheduled(topic.name)
        for subscription in topic.all_subscriptions:
            counts = reader.subscription(topic.name, subscription.name)
            oldest = (oldest_dead_letters or {}).get((topic.area, subscription.name))
            statuses.append(
                RouteStatus(
                    area=topic.area,
                    subscription=subscription.name,
                    active=counts.active,
                    dead_lettered=counts.dead_lettered,
                    scheduled=scheduled,
                    oldest_dead_letter=now - oldest if oldest else None,
                    last_read=now - counts.accessed_at if counts.accessed_at else None,
                    pause=None
                    if subscription.name == UNROUTABLE
                    else (states or {}).get(route_name(topic.area, subscription.name)),
                )
            )
    return statuses


def with_rates(
    first: Sequence[RouteStatus], second: Sequence[RouteStatus], seconds: float
) -> list[RouteStatus]:
    """The second sample with each route's backlog change per second since the first."""
    before = {(s.area, s.subscription): s.active for s in first}
    return [
        replace(
            status,
            backlog_change_per_second=round((status.active - before[key]) / seconds, 2)
            if (key := (status.area, status.subscription)) in before and seconds > 0
            else None,
        )
        for status in second
    ]


def _seconds(value: timedelta | None) -> float | None:
    return round(value.total_seconds(), 1) if value is not None else None
