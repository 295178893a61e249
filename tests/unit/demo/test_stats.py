"""Per-route figures aggregated from the metrics files that producers and consumers write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from dualbus.consumers._metrics import ConsumerMetrics
from dualbus.demo.monitor import read_stats
from dualbus.demo.stats import RouteStats, aggregate, direction_of_origin, latency_by_direction
from dualbus.producers.publisher import ProducerMetrics
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.metrics_file import JsonFileMetricExporter
from dualbus.shared.telemetry import LATENCY_BUCKETS_SECONDS, Traffic, seconds_view, traffic_of

ROUTES = [("customer", "to-dataverse"), ("customer", "to-fo"), ("product", "to-dataverse")]


def _counter(name: str, value: int, **attributes: str) -> dict[str, Any]:
    return {name: [{"attributes": attributes, "value": value}]}


def _consumer(area: str, direction: str, outcomes: dict[str, int], reason: str = "") -> dict[str, Any]:
    points = []
    for outcome, count in outcomes.items():
        attributes = {"area": area, "direction": direction, "outcome": outcome}
        if outcome == "dead-lettered" and reason:
            attributes["reason"] = reason
        points.append({"attributes": attributes, "value": count})
    return {"metrics": {"dualbus.consumer.messages": points}}


def _histogram(area: str, direction: str, buckets: list[int]) -> dict[str, Any]:
    point = {
        "attributes": {"area": area, "direction": direction},
        "count": sum(buckets),
        "sum": 0.0,
        "bounds": [0.1, 1.0, 10.0],
        "buckets": buckets,
    }
    return {"metrics": {"dualbus.consumer.end_to_end_latency": [point]}}


def test_producer_origin_decides_the_direction() -> None:
    """What F&O publishes is counted for to-dataverse and what Dataverse publishes for to-fo."""
    producers = {
        "fo": [{"metrics": _counter("dualbus.producer.published", 7, area="customer")}],
        "dataverse": [{"metrics": _counter("dualbus.producer.published", 3, area="customer")}],
    }
    stats = {(s.area, s.direction): s for s in aggregate(ROUTES, producers, [])}
    assert stats["customer", "to-dataverse"].published == 7
    assert stats["customer", "to-fo"].published == 3
    assert direction_of_origin("dataverse") == "to-fo"


def test_processes_of_one_origin_add_up() -> None:
    """The initial sync's and the producer's counts of one origin are summed, echoes kept apart."""
    producers = {
        "fo": [
            {"metrics": _counter("dualbus.producer.published", 10, area="product")},
            {
                "metrics": _counter("dualbus.producer.published", 5, area="product")
                | _counter("dualbus.producer.skipped_echo", 2, area="product")
            },
        ]
    }
    (product,) = [s for s in aggregate(ROUTES, producers, []) if s.area == "product"]
    assert (product.published, product.skipped_echo) == (15, 2)


def test_outcomes_become_applied_stale_dead_and_lag() -> None:
    """Consumer outcomes map to the table's columns, and lag is what is published but not settled."""
    producers = {"fo": [{"metrics": _counter("dualbus.producer.published", 20, area="customer")}]}
    consumers = [
        _consumer(
            "customer",
            "to-dataverse",
            {"applied": 10, "unchanged": 1, "skipped-stale": 2, "dead-lettered": 3, "retried": 4},
            reason="UnresolvedLookup",
        )
    ]
    row = {(s.area, s.direction): s for s in aggregate(ROUTES, producers, consumers)}[
        "customer", "to-dataverse"
    ]
    assert (row.applied, row.skipped_stale, row.dead_lettered, row.retried) == (11, 2, 3, 4)
    assert row.lag == 20 - 16
    assert row.dead_letter_reasons == {"UnresolvedLookup": 3}


def test_lag_never_goes_negative() -> None:
    """Duplicates dropped by the bus make settled exceed published in no case worth showing below zero."""
    consumers = [_consumer("customer", "to-fo", {"applied": 5})]
    (row,) = [s for s in aggregate(ROUTES, {}, consumers) if s.direction == "to-fo"]
    assert row.lag == 0


def test_latency_histograms_of_replicas_merge() -> None:
    """Two processes' histograms of one route add bucket by bucket before quantiles are taken."""
    consumers = [
        _histogram("customer", "to-fo", [0, 10, 0, 0]),
        _histogram("customer", "to-fo", [0, 0, 10, 0]),
    ]
    (row,) = [s for s in aggregate(ROUTES, {}, consumers) if s.direction == "to-fo"]
    assert row.latency_buckets == [0, 10, 10, 0]
    p50, p99 = row.latency(0.5), row.latency(0.99)
    assert p50 is not None
    assert 0.1 <= p50 <= 1.0
    assert p99 is not None
    assert 1.0 < p99 <= 10.0


def test_unknown_routes_are_ignored() -> None:
    """Figures for an area the table does not show leave the table unchanged."""
    consumers = [_consumer("vendor", "to-fo", {"applied": 5})]
    assert all(s.settled == 0 for s in aggregate(ROUTES, {}, consumers))


def test_reads_files_by_process_name(tmp_path: Path) -> None:
    """read_stats tells producers from consumers by file name and skips a half-written file."""
    (tmp_path / "producer-dataverse.json").write_bytes(
        orjson.dumps({"metrics": _counter("dualbus.producer.published", 4, area="customer")})
    )
    (tmp_path / "consumer-customer-to-fo.json").write_bytes(
        orjson.dumps(_consumer("customer", "to-fo", {"applied": 4}))
    )
    (tmp_path / "consumer-customer-to-dataverse.json").write_bytes(b'{"metrics": ')
    stats = {(s.area, s.direction): s for s in read_stats(tmp_path, ROUTES)}
    assert stats["customer", "to-fo"].published == 4
    assert stats["customer", "to-fo"].applied == 4
    assert stats["customer", "to-fo"].lag == 0


def test_reads_what_the_real_exporter_writes(tmp_path: Path) -> None:
    """The producer's own instruments, exported by the jsonfile exporter, show up in the figures."""
    reader = PeriodicExportingMetricReader(
        JsonFileMetricExporter(tmp_path / "producer-fo.json"), export_interval_millis=60_000
    )
    provider = MeterProvider(metric_readers=[reader])
    instruments = ProducerMetrics(provider.get_meter("test"))
    instruments.published.add(6, {"area": "customer"})
    instruments.skipped_echo.add(1, {"area": "customer"})
    provider.force_flush()
    provider.shutdown()
    (row,) = [
        s for s in read_stats(tmp_path, ROUTES) if s.direction == "to-dataverse" and s.area == "customer"
    ]
    assert (row.published, row.skipped_echo) == (6, 1)


def test_latency_bound_is_the_bucket_holding_the_quantile() -> None:
    """p50 and p99 are read as "at most the bound of their bucket", beyond the last bound as infinite."""
    consumers = [_histogram("customer", "to-fo", [5, 4, 0, 1])]
    (row,) = [s for s in aggregate(ROUTES, {}, consumers) if s.direction == "to-fo"]
    assert row.latency_at_most(0.5) == 0.1
    assert row.latency_at_most(0.9) == 1.0
    assert row.latency_at_most(0.99) == float("inf")
    assert row.as_dict()["p99_at_most_seconds"] is None
    empty = RouteStats("product", "to-dataverse")
    assert empty.latency_at_most(0.5) is None


def test_live_latency_reads_as_real_seconds_apart_from_initial_sync(tmp_path: Path) -> None:
    """The consumer's end-to-end histogram, exported for real, gives sub-second quantiles of live changes.

    Initial-sync rows (hours old when they arrive) are counted apart and leave the live figures alone.
    """
    reader = PeriodicExportingMetricReader(
        JsonFileMetricExporter(tmp_path / "consumer-customer-to-fo.json"), export_interval_millis=60_000
    )
    provider = MeterProvider(metric_readers=[reader], views=[seconds_view()])
    metrics = ConsumerMetrics("customer", "to-fo", meter_provider=provider)
    now = datetime.now(UTC)
    for lag in (0.2, 0.2, 0.3, 0.3, 0.4):
        metrics.applied(0.01, now - timedelta(seconds=lag))
    metrics.applied(0.01, now - timedelta(hours=3), Traffic.INITIAL_SYNC)
    provider.force_flush()
    provider.shutdown()
    (row,) = [s for s in read_stats(tmp_path, ROUTES) if s.direction == "to-fo" and s.area == "customer"]
    assert row.latency_bounds == list(LATENCY_BUCKETS_SECONDS)
    assert row.other_traffic == {"initial-sync": 1}
    figures = row.as_dict()
    assert figures["live_applied"] == 5
    assert 0.15 < figures["p50_seconds"] < 0.5
    assert 0.3 < figures["p99_seconds"] < 0.6


def test_traffic_is_told_by_the_envelope() -> None:
    """Repairs say so; an initial sync's rows carry source version 0; everything else is live."""
    base = {
        "origin": Origin.FO,
        "area": "customer",
        "entity": "CustomersV3",
        "key": {"dataAreaId": "usmf", "CustomerAccount": "C1"},
        "operation": Operation.UPDATE,
        "time": datetime.now(UTC),
    }
    assert traffic_of(Envelope.for_change(**base, source_version=7)) is Traffic.LIVE
    assert traffic_of(Envelope.for_change(**base, source_version=0)) is Traffic.INITIAL_SYNC
    assert traffic_of(Envelope.for_change(**base, source_version=7, repair_run="r1")) is Traffic.REPAIR


def test_the_producers_leg_is_measured_apart(tmp_path: Path) -> None:
    """change → published comes from the producer's histogram; its initial-sync rows are left out."""
    reader = PeriodicExportingMetricReader(
        JsonFileMetricExporter(tmp_path / "producer-fo.json"), export_interval_millis=60_000
    )
    provider = MeterProvider(metric_readers=[reader], views=[seconds_view()])
    instruments = ProducerMetrics(provider.get_meter("test"))
    for lag in (0.1, 0.2, 0.3):
        instruments.source_to_published.record(lag, {"area": "customer", "traffic": "live"})
    instruments.source_to_published.record(3600.0, {"area": "customer", "traffic": "initial-sync"})
    provider.force_flush()
    provider.shutdown()
    figures = latency_by_direction(read_stats(tmp_path, ROUTES), leg="published")
    assert figures["to-dataverse"]["applied"] == 3
    assert 0.1 < figures["to-dataverse"]["p50_seconds"] < 0.3
    assert figures["to-fo"]["applied"] == 0
