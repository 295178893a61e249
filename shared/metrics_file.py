"""A metric exporter that keeps the latest snapshot of a process's metrics in one JSON file.

Selected with ``OTEL_METRICS_EXPORTER=jsonfile`` and ``DUALBUS_METRICS_FILE=<path>``. The demo (and anyone
without an OpenTelemetry collector) reads these files to show what each producer and consumer is doing.
The file is replaced atomically, so a reader never sees half a snapshot.

Snapshot shape: ``{"time": ..., "metrics": {name: [{"attributes": {...}, "value": n}
| {"attributes": {...}, "count": n, "sum": s, "bounds": [...], "buckets": [...]}]}}``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.sdk.metrics import Counter, Histogram, ObservableCounter, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
)

__all__ = ["JsonFileMetricExporter", "quantile", "read_snapshot"]

# Cumulative totals: each snapshot holds everything since the process started.
_CUMULATIVE: dict[type, AggregationTemporality] = dict.fromkeys(
    (Counter, Histogram, ObservableCounter, UpDownCounter), AggregationTemporality.CUMULATIVE
)


class JsonFileMetricExporter(MetricExporter):
    """Writes every export as the latest snapshot of the process's metrics."""

    def __init__(self, path: Path) -> None:
        super().__init__(preferred_temporality=dict(_CUMULATIVE))
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(
        self,
        metrics_data: MetricsData,
        timeout_millis: float = 10_000,  # noqa: ARG002 - the SDK's signature; writing a file needs no timeout
        **kwargs: Any,  # noqa: ANN401, ARG002 - the SDK's signature
    ) -> MetricExportResult:
        """Replace the file with this snapshot."""
        snapshot: dict[str, list[dict[str, Any]]] = {}
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    points = snapshot.setdefault(metric.name, [])
                    points.extend(_point(point) for point in metric.data.data_points)
        temporary = self._path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(orjson.dumps({"time": time.time(), "metrics": snapshot}))
        temporary.replace(self._path)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:  # noqa: ARG002 - the SDK's signature
        """Nothing is buffered."""
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:  # noqa: ANN401 - SDK signature
        """Nothing to release."""


def _point(point: object) -> dict[str, Any]:
    if isinstance(point, HistogramDataPoint):
        return {
            "attributes": dict(point.attributes or {}),
            "count": point.count,
            "sum": point.sum,
            "bounds": list(point.explicit_bounds),
            "buckets": list(point.bucket_counts),
        }
    if isinstance(point, NumberDataPoint):
        return {"attributes": dict(point.attributes or {}), "value": point.value}
    return {"attributes": {}, "unsupported": type(point).__name__}


def read_snapshot(path: Path) -> dict[str, Any]:
    """The latest snapshot in ``path`` (empty when the process has not exported yet)."""
    try:
        return dict(orjson.loads(path.read_bytes()))
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}


def quantile(bounds: Sequence[float], buckets: Sequence[int], q: float) -> float | None:
    """Estimate a quantile from histogram buckets (linear within the bucket); None when empty."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            lower = bounds[index - 1] if index > 0 else 0.0
            upper = bounds[index] if index < len(bounds) else (bounds[-1] if bounds else 0.0)
            return lower + (upper - lower) * ((rank - seen) / count)
        seen += count
    return bounds[-1] if bounds else None
