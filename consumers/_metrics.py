"""The consumer's telemetry: one span per message and the counters and histograms operators watch.

Latencies are in seconds with explicit bucket bounds from 1 ms to 60 s (``shared.telemetry``), and carry a
``traffic`` attribute: ``live`` for changes made at the source, ``initial-sync`` for a backfill's rows and
``repair`` for reconcile's re-publishes, so a backfill does not pass for live latency.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opentelemetry import metrics, trace

from dualbus.shared.telemetry import (
    LATENCY_BUCKETS_SECONDS,
    TRAFFIC_ATTRIBUTE,
    Traffic,
    tracing_on,
    traffic_of,
)

__all__ = ["ConsumerMetrics", "Traffic", "traffic_of"]

_METER = "dualbus.consumer"


@dataclass
class ConsumerMetrics:
    """Counts outcomes (also kept in-process, for tests and benchmarks) and records latencies."""

    area: str
    direction: str
    counts: Counter[str] = field(default_factory=Counter)
    # The global providers unless given (tests pass in-memory ones).
    tracer_provider: trace.TracerProvider | None = None
    meter_provider: metrics.MeterProvider | None = None

    def __post_init__(self) -> None:
        meter = metrics.get_meter(_METER, meter_provider=self.meter_provider)
        self.tracer = trace.get_tracer(_METER, tracer_provider=self.tracer_provider)
        self._outcomes = meter.create_counter(
            "dualbus.consumer.messages", description="Messages by outcome: applied, skipped-stale, ..."
        )
        self._apply = meter.create_histogram(
            "dualbus.consumer.apply_latency",
            unit="s",
            description="Time to apply one event to the target",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_SECONDS,
        )
        self._end_to_end = meter.create_histogram(
            "dualbus.consumer.end_to_end_latency",
            unit="s",
            description="From the change at the source (the envelope's time) to the target's write",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_SECONDS,
        )

    @property
    def tracing(self) -> bool:
        """Whether spans are recorded: without, none is made and a message's trace context is not read.
        Asked each time, so that a provider installed later is followed, as the global tracer does."""
        return tracing_on(self.tracer_provider)

    @property
    def _attributes(self) -> dict[str, str]:
        return {"area": self.area, "direction": self.direction}

    def outcome(self, name: str, reason: str | None = None) -> None:
        """Count one message outcome: applied, skipped-stale, skipped-conflict, retried, dead-lettered, ..."""
        self.counts[name] += 1
        attributes = self._attributes | ({"reason": reason} if reason else {})
        self._outcomes.add(1, {"outcome": name, **attributes})

    def applied(self, seconds: float, source_time: datetime, traffic: Traffic = Traffic.LIVE) -> None:
        """Record how long an apply took and how long since the change happened at its source.

        Called once the target answered the write, so the end-to-end figure includes the write itself.
        """
        attributes = self._attributes | {TRAFFIC_ATTRIBUTE: traffic.value}
        self._apply.record(seconds, attributes)
        lag = (datetime.now(UTC) - source_time).total_seconds()
        self._end_to_end.record(max(lag, 0.0), attributes)
