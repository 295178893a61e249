"""Per area and direction figures, aggregated from the metrics snapshots the producers and consumers write.

Pure: the input is parsed snapshots (``shared.metrics_file.read_snapshot``), the output plain dataclasses.
Every snapshot holds cumulative totals since its process started, so figures of several processes add up.
A producer's ``published`` and ``skipped_echo`` counters carry only the area: the origin of the producer
tells the direction (what F&O publishes goes to Dataverse, and the reverse). Latency figures are of live
changes only (the histogram's ``traffic`` attribute): initial-sync and repair rows are kept apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dualbus.shared.metrics_file import quantile
from dualbus.shared.telemetry import TRAFFIC_ATTRIBUTE

__all__ = [
    "CONSUMER_MESSAGES",
    "END_TO_END",
    "LIVE",
    "PUBLISHED",
    "SKIPPED_ECHO",
    "TERMINAL_OUTCOMES",
    "DirectionLatency",
    "RouteStats",
    "aggregate",
    "direction_of_origin",
    "latency_by_direction",
]

PUBLISHED = "dualbus.producer.published"
SKIPPED_ECHO = "dualbus.producer.skipped_echo"
CONSUMER_MESSAGES = "dualbus.consumer.messages"
END_TO_END = "dualbus.consumer.end_to_end_latency"
SOURCE_TO_PUBLISHED = "dualbus.producer.source_to_published"
# Outcomes that settle a message for good; retried, abandoned and lock-lost messages come back.
TERMINAL_OUTCOMES = frozenset({"applied", "unchanged", "skipped-stale", "skipped-conflict", "dead-lettered"})
_DIRECTIONS = {"fo": "to-dataverse", "dataverse": "to-fo"}
LIVE = "live"


def direction_of_origin(origin: str) -> str:
    """The subscription direction that carries changes made in ``origin``."""
    return _DIRECTIONS[origin]


@dataclass(slots=True)
class RouteStats:
    """What one area's changes in one direction did so far."""

    area: str
    direction: str
    published: int = 0
    skipped_echo: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    # The live changes' source-to-target latency histogram (explicit bounds in seconds).
    latency_bounds: list[float] = field(default_factory=list)
    latency_buckets: list[int] = field(default_factory=list)
    # The same for the first leg alone: from the change at the source to its message sent by the producer.
    published_bounds: list[float] = field(default_factory=list)
    published_buckets: list[int] = field(default_factory=list)
    # How many applied changes were initial-sync or repair traffic, not counted in the latency figures.
    other_traffic: dict[str, int] = field(default_factory=dict)

    @property
    def applied(self) -> int:
        """Messages whose change the target took (or already held: a delete of a missing row)."""
        return self.outcomes.get("applied", 0) + self.outcomes.get("unchanged", 0)

    @property
    def skipped_stale(self) -> int:
        """Messages skipped because the target held a newer version (stale or conflicting)."""
        return self.outcomes.get("skipped-stale", 0) + self.outcomes.get("skipped-conflict", 0)

    @property
    def dead_lettered(self) -> int:
        """Messages dead-lettered with a reason."""
        return self.outcomes.get("dead-lettered", 0)

    @property
    def retried(self) -> int:
        """Handling attempts that failed transiently and were retried."""
        return self.outcomes.get("retried", 0)

    @property
    def settled(self) -> int:
        """Messages settled for good, whatever the outcome."""
        return sum(count for name, count in self.outcomes.items() if name in TERMINAL_OUTCOMES)

    @property
    def lag(self) -> int:
        """Messages published but not settled yet (never below zero: duplicates are dropped by the bus)."""
        return max(self.published - self.settled, 0)

    def latency(self, q: float) -> float | None:
        """A quantile of the source-to-target latency in seconds; None before anything was applied."""
        return quantile(self.latency_bounds, self.latency_buckets, q)

    def latency_at_most(self, q: float) -> float | None:
        """The upper bound of the bucket holding quantile ``q``: what the histogram can honestly promise.

        ``inf`` when the quantile lies beyond the last bound; None before anything was applied.
        """
        total = sum(self.latency_buckets)
        if total == 0:
            return None
        seen = 0
        for index, count in enumerate(self.latency_buckets):
            seen += count
            if count and seen >= q * total:
                return self.latency_bounds[index] if index < len(self.latency_bounds) else math.inf
        return math.inf

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "area": self.area,
            "direction": self.direction,
            "published": self.published,
            "applied": self.applied,
            "skipped_stale": self.skipped_stale,
            "skipped_echo": self.skipped_echo,
            "dead_lettered": self.dead_lettered,
            "retried": self.retried,
            "lag": self.lag,
            "dead_letter_reasons": dict(self.dead_letter_reasons),
            "live_applied": sum(self.latency_buckets),
            "other_traffic": dict(self.other_traffic),
            "p50_seconds": _rounded(self.latency(0.5)),
            "p95_seconds": _rounded(self.latency(0.95)),
            "p99_seconds": _rounded(self.latency(0.99)),
            "p99_at_most_seconds": _finite(self.latency_at_most(0.99)),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _finite(value: float | None) -> float | None:
    """JSON has no infinity: beyond the last bucket reads as unknown."""
    return None if value is None or math.isinf(value) else value


def aggregate(
    routes: Iterable[tuple[str, str]],
    producers: Mapping[str, Sequence[Mapping[str, Any]]],
    consumers: Iterable[Mapping[str, Any]],
) -> list[RouteStats]:
    """Figures per route; ``producers`` maps an origin to the snapshots of its processes."""
    table = {(area, direction): RouteStats(area, direction) for area, direction in routes}
    for origin, snapshots in producers.items():
        direction = direction_of_origin(origin)
        for snapshot in snapshots:
            _add_producer(table, direction, _metrics(snapshot))
    for snapshot in consumers:
        _add_consumer(table, _metrics(snapshot))
    return list(table.values())


def _metrics(snapshot: Mapping[str, Any]) -> Mapping[str, list[dict[str, Any]]]:
    metrics = snapshot.get("metrics", {})
    return metrics if isinstance(metrics, Mapping) else {}


def _add_producer(
    table: dict[tuple[str, str], RouteStats], direction: str, metrics: Mapping[str, list[dict[str, Any]]]
) -> None:
    for name, attribute in ((PUBLISHED, "published"), (SKIPPED_ECHO, "skipped_echo")):
        for point in metrics.get(name, []):
            stats = table.get((str(point["attributes"].get("area")), direction))
            if stats is not None:
                setattr(stats, attribute, getattr(stats, attribute) + int(point.get("value", 0)))
    for point in metrics.get(SOURCE_TO_PUBLISHED, []):
        attributes = point.get("attributes", {})
        stats = table.get((str(attributes.get("area")), direction))
        if stats is not None and str(attributes.get(TRAFFIC_ATTRIBUTE, LIVE)) == LIVE:
            stats.published_bounds, stats.published_buckets = _merged(
                stats.published_bounds, stats.published_buckets, point
            )


def _add_consumer(
    table: dict[tuple[str, str], RouteStats], metrics: Mapping[str, list[dict[str, Any]]]
) -> None:
    for point in metrics.get(CONSUMER_MESSAGES, []):
        stats = _route_of(table, point)
        if stats is None:
            continue
        outcome = str(point["attributes"].get("outcome"))
        count = int(point.get("value", 0))
        stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + count
        reason = point["attributes"].get("reason")
        if outcome == "dead-lettered" and reason:
            stats.dead_letter_reasons[reason] = stats.dead_letter_reasons.get(reason, 0) + count
    for point in metrics.get(END_TO_END, []):
        stats = _route_of(table, point)
        if stats is None:
            continue
        traffic = str(point.get("attributes", {}).get(TRAFFIC_ATTRIBUTE, LIVE))
        if traffic == LIVE:
            _merge_histogram(stats, point)
        else:
            stats.other_traffic[traffic] = stats.other_traffic.get(traffic, 0) + int(point.get("count", 0))


def _route_of(table: dict[tuple[str, str], RouteStats], point: Mapping[str, Any]) -> RouteStats | None:
    attributes = point.get("attributes", {})
    return table.get((str(attributes.get("area")), str(attributes.get("direction"))))


def _merge_histogram(stats: RouteStats, point: Mapping[str, Any]) -> None:
    stats.latency_bounds, stats.latency_buckets = _merged(stats.latency_bounds, stats.latency_buckets, point)


def _merged(
    bounds: list[float], buckets: list[int], point: Mapping[str, Any]
) -> tuple[list[float], list[int]]:
    """A histogram with ``point``'s counts added (one with other bounds is left out: the first stands)."""
    new_bounds = [float(b) for b in point.get("bounds", [])]
    new_buckets = [int(c) for c in point.get("buckets", [])]
    if not buckets:
        return new_bounds, new_buckets
    if new_bounds == bounds and len(new_buckets) == len(buckets):
        return bounds, [a + b for a, b in zip(buckets, new_buckets, strict=True)]
    return bounds, buckets


@dataclass(slots=True)
class DirectionLatency:
    """Live change-to-applied latency of one direction, its areas' histograms summed."""

    bounds: list[float] = field(default_factory=list)
    buckets: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, stats: Iterable[RouteStats], direction: str, *, leg: str = "applied") -> DirectionLatency:
        """The sum over the routes of ``direction`` (histograms with other bounds are left out).

        ``leg``: ``applied`` for change → applied, ``published`` for change → published (the producer's part).
        """
        total = cls()
        for row in stats:
            bounds, buckets = (
                (row.latency_bounds, row.latency_buckets)
                if leg == "applied"
                else (row.published_bounds, row.published_buckets)
            )
            if row.direction != direction or not buckets:
                continue
            point = {"bounds": bounds, "buckets": buckets}
            total.bounds, total.buckets = _merged(total.bounds, total.buckets, point)
        return total

    def since(self, earlier: DirectionLatency) -> DirectionLatency:
        """What was added after ``earlier`` (snapshots are cumulative)."""
        if not earlier.buckets or earlier.bounds != self.bounds:
            return self
        return DirectionLatency(
            self.bounds, [a - b for a, b in zip(self.buckets, earlier.buckets, strict=True)]
        )

    def figures(self) -> dict[str, Any]:
        """How many were applied and p50/p95/p99 in seconds (None before any)."""
        return {
            "applied": sum(self.buckets),
            **{
                f"p{round(q * 100)}_seconds": _rounded(quantile(self.bounds, self.buckets, q))
                for q in (0.5, 0.95, 0.99)
            },
        }


def latency_by_direction(
    stats: Sequence[RouteStats], since: Sequence[RouteStats] = (), *, leg: str = "applied"
) -> dict[str, dict[str, Any]]:
    """Per direction, live changes' latency figures (only what came after ``since``, when given).

    ``leg``: ``applied`` (change → applied, end to end) or ``published`` (change → published).
    """
    figures: dict[str, dict[str, Any]] = {}
    for direction in _DIRECTIONS.values():
        earlier = DirectionLatency.of(since, direction, leg=leg)
        figures[direction] = DirectionLatency.of(stats, direction, leg=leg).since(earlier).figures()
    return figures
