"""Each message gets a span continuing the producer's trace, and outcomes and latencies become metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer, NoOpTracerProvider, StatusCode

from dualbus.consumers import AdaptiveLimit, ApplyResult, ConsumerMetrics, MessageProcessor, MessageRetry
from dualbus.shared.envelope import CONTENT_TYPE, Envelope, Operation, Origin
from dualbus.shared.maps import load_maps
from dualbus.shared.messages import to_message
from dualbus.shared.topology import Direction

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@dataclass
class FakeMessage:
    """A received message as ``to_message`` sends it, carrying a W3C traceparent."""

    body: bytes
    message_id: str
    session_id: str | None
    subject: str | None
    application_properties: dict = field(default_factory=dict)
    content_type: str = CONTENT_TYPE

    @classmethod
    def of(cls, envelope: Envelope) -> FakeMessage:
        """The received form of ``envelope``'s message."""
        sent = to_message(envelope)
        properties = {**(sent.application_properties or {}), b"traceparent": PARENT.encode()}
        return cls(envelope.to_json(), str(sent.message_id), sent.session_id, sent.subject, properties)


class Settler:
    """Accepts every settlement."""

    async def complete_message(self, message):
        assert message.body

    async def abandon_message(self, message):
        raise AssertionError(f"nothing should be abandoned: {message.message_id}")

    async def dead_letter_message(self, message, reason=None, error_description=None):
        raise AssertionError(
            f"{message.message_id} should not be dead-lettered: {reason} {error_description}"
        )

    def lose(self, why):
        raise AssertionError(f"no lock should be lost: {why}")


class Sink:
    """Applies everything."""

    async def apply(self, change):
        assert change.source_version == 2
        return ApplyResult.APPLIED

    async def aclose(self):
        return None


def _euro(*, time: datetime) -> Envelope:
    """A change to the euro's name, made at ``time``."""
    return Envelope.for_change(
        origin=Origin.FO,
        area="currency",
        entity="Currencies",
        key={"CurrencyCode": "EUR"},
        operation=Operation.UPDATE,
        source_version=2,
        time=time,
        data={"Name": "Euro"},
    )


def _metrics(tracer_provider, reader: InMemoryMetricReader) -> ConsumerMetrics:
    """The currency route's metrics on the given tracer provider and metric reader."""
    return ConsumerMetrics(
        area="currency",
        direction="to-dataverse",
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )


def _processor(metrics: ConsumerMetrics) -> MessageProcessor:
    return MessageProcessor(
        area="currency",
        direction=Direction.TO_DATAVERSE,
        maps=load_maps(),
        sink=Sink(),
        limit=AdaptiveLimit(2),
        retry=MessageRetry(),
        metrics=metrics,
    )


@pytest.mark.asyncio
async def test_a_message_span_continues_the_producers_trace_and_metrics_are_recorded():
    """The consume span has the producer's trace id; applied count and both latencies are exported."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    metrics = _metrics(tracer_provider, reader)
    message = FakeMessage.of(_euro(time=datetime.now(UTC) - timedelta(seconds=3)))
    assert await _processor(metrics).process(message, Settler()) == "applied"
    [span] = spans.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.attributes["dualbus.outcome"] == "applied"
    data = reader.get_metrics_data()
    points = {
        metric.name: metric.data.data_points
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    [applied] = points["dualbus.consumer.messages"]
    assert applied.value == 1
    assert applied.attributes["outcome"] == "applied"
    [end_to_end] = points["dualbus.consumer.end_to_end_latency"]
    assert end_to_end.sum >= 3.0
    assert points["dualbus.consumer.apply_latency"][0].count == 1


class BrokenSettler(Settler):
    """Fails to complete, as a bug would: with no error the processor handles."""

    async def complete_message(self, message):
        raise RuntimeError(f"a bug completing {message.message_id}")


@pytest.mark.asyncio
async def test_a_failure_that_leaves_processing_ends_the_span_as_an_error():
    """A bug that escapes processing shows on the message's span, which ends."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    metrics = ConsumerMetrics(area="currency", direction="to-dataverse", tracer_provider=tracer_provider)
    with pytest.raises(RuntimeError, match="a bug"):
        await _processor(metrics).process(FakeMessage.of(_euro(time=datetime.now(UTC))), BrokenSettler())
    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert format(span.context.trace_id, "032x") == TRACE_ID


@pytest.mark.asyncio
async def test_without_a_recording_tracer_no_span_is_made_and_metrics_still_count():
    """OpenTelemetry's no-op provider (what setup_telemetry installs without an exporter): the message is
    processed and counted, and no span is started for it."""

    class CountingProvider(NoOpTracerProvider):
        started = 0

        def get_tracer(self, *_args, **_kwargs):
            provider = self

            class Tracer(NoOpTracer):
                def start_span(self, *args, **kwargs):
                    provider.started += 1
                    return super().start_span(*args, **kwargs)

            return Tracer()

    provider = CountingProvider()
    metrics = _metrics(provider, InMemoryMetricReader())
    assert not metrics.tracing
    message = FakeMessage.of(_euro(time=datetime.now(UTC)))
    assert await _processor(metrics).process(message, Settler()) == "applied"
    assert provider.started == 0
    assert metrics.counts["applied"] == 1
