"""OpenTelemetry bootstrap: tracer and meter providers from the standard ``OTEL_*`` variables.

Harmless when nothing is set: spans and metrics are recorded in memory and go nowhere. Exporters follow
``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``console``, ``otlp`` or ``none``), see
https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/
"""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from shared.errors import ConfigError
from shared.metrics_file import JsonFileMetricExporter

__all__ = ["setup_telemetry"]

_OTLP_HINT = "the OTLP exporter is not installed: pip install 'dualbus[otlp]'"


def setup_telemetry(service_name: str, *, environ: dict[str, str] | None = None) -> TracerProvider:
    """Install global tracer and meter providers for ``service_name``; returns the tracer provider."""
    env = dict(os.environ if environ is None else environ)
    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME", service_name)})
    tracer_provider = TracerProvider(resource=resource)
    span_exporter = _span_exporter(env.get("OTEL_TRACES_EXPORTER", "none"))
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(tracer_provider)
    metric_exporter = _metric_exporter(env.get("OTEL_METRICS_EXPORTER", "none"), env)
    readers: list[MetricReader] = (
        [PeriodicExportingMetricReader(metric_exporter)] if metric_exporter is not None else []
    )
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    return tracer_provider


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
