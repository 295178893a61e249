"""OpenTelemetry bootstrap: tracer and meter providers from the standard ``OTEL_*`` variables.

Harmless when nothing is set: metrics are kept in memory and go nowhere, and no span is made at all (see
``setup_telemetry``). Exporters follow
``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``console``, ``otlp`` or ``none``), see
https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/
"""

from __future__ import annotations

import os
from enum import StrEnum
from importlib import import_module
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from dualbus.shared.envelope import Envelope
from dualbus.shared.errors import ConfigError
from dualbus.shared.metrics_file import JsonFileMetricExporter

__all__ = [
    "LATENCY_BUCKETS_SECONDS",
    "TRAFFIC_ATTRIBUTE",
    "Traffic",
    "seconds_view",
    "setup_telemetry",
    "tracing_on",
    "traffic_of",
]

# Bucket bounds for every latency in seconds, 1 ms to 60 s: OpenTelemetry's default bounds (0, 5, 10, 25,
# ... 10000) are meant for milliseconds and would put every sub-second latency in the first bucket. Finer
# between 50 ms and 2 s, where a near-real-time pipeline's figures lie, so quantiles read to a few per cent.
# Instruments pass these as advice (``explicit_bucket_boundaries_advisory``) and ``seconds_view`` applies
# them to any histogram in seconds; see
# https://opentelemetry.io/docs/specs/otel/metrics/api/#instrument-advisory-parameters
LATENCY_BUCKETS_SECONDS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6,
    0.75, 0.9, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
)  # fmt: skip
# The attribute that tells live changes from initial-sync and repair traffic on latency histograms.
TRAFFIC_ATTRIBUTE = "traffic"


class Traffic(StrEnum):
    """What kind of change a message carries, for telling latencies apart."""

    LIVE = "live"
    INITIAL_SYNC = "initial-sync"
    REPAIR = "repair"


def traffic_of(envelope: Envelope) -> Traffic:
    """A repair says so itself; an initial sync publishes rows at source version 0 (no change tracked)."""
    if envelope.repair:
        return Traffic.REPAIR
    if envelope.source_version == 0:
        return Traffic.INITIAL_SYNC
    return Traffic.LIVE


_OTLP_HINT = "the OTLP exporter is not installed: pip install 'dualbus[otlp]'"


def setup_telemetry(service_name: str, *, environ: dict[str, str] | None = None) -> trace.TracerProvider:
    """Install global tracer and meter providers for ``service_name``; returns the tracer provider.

    Without a traces exporter the tracer provider is OpenTelemetry's no-op one: an SDK provider with no
    processor still built every span (ids, attributes, a context per message) for nothing, about 5 % of a
    consumer's and of a producer's CPU; ``tracing_on`` then tells the pipeline to skip its spans.
    """
    env = dict(os.environ if environ is None else environ)
    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME", service_name)})
    span_exporter = _span_exporter(env.get("OTEL_TRACES_EXPORTER", "none"))
    tracer_provider: trace.TracerProvider = trace.NoOpTracerProvider()
    if span_exporter is not None:
        sdk_provider = TracerProvider(resource=resource)
        sdk_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        tracer_provider = sdk_provider
    trace.set_tracer_provider(tracer_provider)
    metric_exporter = _metric_exporter(env.get("OTEL_METRICS_EXPORTER", "none"), env)
    readers: list[MetricReader] = (
        [PeriodicExportingMetricReader(metric_exporter)] if metric_exporter is not None else []
    )
    metrics.set_meter_provider(
        MeterProvider(resource=resource, metric_readers=readers, views=[seconds_view()])
    )
    return tracer_provider


def tracing_on(provider: trace.TracerProvider | None = None) -> bool:
    """Whether spans made through ``provider`` (the global one when None) are recorded at all: not with the
    no-op provider ``setup_telemetry`` installs without an exporter, nor before any is installed."""
    chosen = provider if provider is not None else trace.get_tracer_provider()
    return not isinstance(chosen, trace.NoOpTracerProvider | trace.ProxyTracerProvider)


def seconds_view() -> View:
    """Every histogram measured in seconds gets the latency buckets, whatever advice its instrument gave."""
    return View(
        instrument_type=Histogram,
        instrument_unit="s",
        aggregation=ExplicitBucketHistogramAggregation(boundaries=LATENCY_BUCKETS_SECONDS),
    )


def _span_exporter(name: str) -> SpanExporter | None:
    match name.strip().lower():
        case "none" | "":
            return None
        case "console":
            return ConsoleSpanExporter()
        case "otlp":
            exporter: SpanExporter = _otlp(
                "opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"
            )
            return exporter
        case other:
            raise ConfigError(f"OTEL_TRACES_EXPORTER={other!r} is not one of: console, otlp, none")


def _metric_exporter(name: str, env: dict[str, str]) -> MetricExporter | None:
    match name.strip().lower():
        case "none" | "":
            return None
        case "console":
            return ConsoleMetricExporter()
        case "jsonfile":
            path = env.get("DUALBUS_METRICS_FILE")
            if not path:
                raise ConfigError("OTEL_METRICS_EXPORTER=jsonfile needs DUALBUS_METRICS_FILE")
            return JsonFileMetricExporter(Path(path))
        case "otlp":
            exporter: MetricExporter = _otlp(
                "opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"
            )
            return exporter
        case other:
            raise ConfigError(f"OTEL_METRICS_EXPORTER={other!r} is not one of: console, jsonfile, otlp, none")


def _otlp(module: str, name: str) -> Any:  # noqa: ANN401 - the exporter classes are optional imports
    try:
        return getattr(import_module(module), name)()
    except ImportError as exc:
        raise ConfigError(_OTLP_HINT) from exc
