"""The JSON-file metric exporter keeps each process's latest metrics where the demo can read them."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from dualbus.shared.errors import ConfigError
from dualbus.shared.metrics_file import JsonFileMetricExporter, quantile, read_snapshot
from dualbus.shared.telemetry import setup_telemetry


def test_jsonfile_exporter_writes_counters_and_histograms(tmp_path: Path) -> None:
    """With OTEL_METRICS_EXPORTER=jsonfile, a process's counters and histograms land in its snapshot file."""
    path = tmp_path / "metrics" / "consumer.json"
    reader = PeriodicExportingMetricReader(JsonFileMetricExporter(path), export_interval_millis=60_000)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("t")
    meter.create_counter("dualbus.applied").add(3, {"area": "customer"})
    latency = meter.create_histogram("dualbus.latency", unit="ms")
    for value in (1, 2, 3, 400):
        latency.record(value)
    provider.force_flush()
    snapshot = read_snapshot(path)
    provider.shutdown()
    (applied,) = snapshot["metrics"]["dualbus.applied"]
    assert applied == {"attributes": {"area": "customer"}, "value": 3}
    (histogram,) = snapshot["metrics"]["dualbus.latency"]
    assert histogram["count"] == 4
    median = quantile(histogram["bounds"], histogram["buckets"], 0.5)
    assert median is not None
    assert median <= 5


def test_jsonfile_exporter_needs_a_path() -> None:
    """Selecting the file exporter without saying where is a clear error."""
    with pytest.raises(ConfigError, match="DUALBUS_METRICS_FILE"):
        setup_telemetry("dualbus-test", environ={"OTEL_METRICS_EXPORTER": "jsonfile"})


def test_quantile_of_empty_histogram_is_none() -> None:
    """No observations, no quantile."""
    assert quantile([5.0, 10.0], [0, 0, 0], 0.99) is None
    assert quantile([5.0, 10.0], [0, 0, 4], 0.99) == 10.0
