"""The publisher's batching, message properties and spans, against the SDK's own ServiceBusMessageBatch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from dualbus.producers import publisher as publisher_module
from dualbus.producers.publisher import Publisher, bucket_batches
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import BusError, TransientError
from dualbus.shared.message_batches import MAX_BATCH_CHANGES, envelopes_of, is_batch
from dualbus.shared.messages import ordering_bucket
from dualbus.shared.telemetry import tracing_on
from dualbus.shared.topology import default_topology
from tests.unit.producers.fakes import RecordingClient, RecordingSender


def _envelope(number: int, area: str = "customer", payload: str = "x") -> Envelope:
    return Envelope.for_change(
        origin=Origin.FO,
        area=area,
        entity="CustomersV3",
        key={"dataAreaId": "usmf", "CustomerAccount": f"C-{number}"},
        operation=Operation.UPDATE,
        source_version=number,
        time=datetime(2026, 1, 1, tzinfo=UTC),
        data={"OrganizationName": payload},
        company="USMF",
    )


def _messages(sender: RecordingSender) -> list:
    return [message for batch in sender.sent for message in batch._messages]


@pytest.mark.asyncio
async def test_batches_split_at_the_entity_size_limit() -> None:
    """Envelopes that do not fit one batch go out in several, in order, none lost."""
    client = RecordingClient(max_bytes=4096)
    publisher = Publisher(client, default_topology())  # type: ignore[arg-type]
    envelopes = [_envelope(n, payload="y" * 300) for n in range(40)]
    assert await publisher.publish(envelopes) == 40
    sender = client.senders["dualbus.customer"]
    assert len(sender.sent) > 1
    assert [m.message_id for m in _messages(sender)] == [e.id for e in envelopes]
    assert publisher.published == 40
    assert publisher.batches == len(sender.sent)


@pytest.mark.asyncio
async def test_messages_carry_id_session_and_routing_properties() -> None:
    """Each message has the envelope id, the record's ordering bucket and the routing properties."""
    client = RecordingClient(max_bytes=256 * 1024)
    topology = default_topology()
    await Publisher(client, topology).publish([_envelope(1)])  # type: ignore[arg-type]
    (message,) = _messages(client.senders["dualbus.customer"])
    envelope = _envelope(1)
    assert message.message_id == envelope.id
    buckets = topology.topic("customer").ordering_buckets
    assert message.session_id == ordering_bucket("customer", envelope.key, buckets)
    properties = message.application_properties
    assert properties["origin"] == "fo"
    assert properties["company"] == "USMF"
    assert properties["operation"] == "update"


@pytest.mark.asyncio
async def test_each_area_goes_to_its_own_topic() -> None:
    """Envelopes of two areas are sent to the two area topics."""
    client = RecordingClient(max_bytes=256 * 1024)
    await Publisher(client, default_topology()).publish([_envelope(1), _envelope(2, area="vendor")])  # type: ignore[arg-type]
    assert set(client.senders) == {"dualbus.customer", "dualbus.vendor"}


@pytest.mark.asyncio
async def test_one_span_per_change_and_its_trace_travels() -> None:
    """Every change gets a producer span whose trace context is on its message."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = RecordingClient(max_bytes=256 * 1024)
    publisher = Publisher(client, default_topology(), tracer=provider.get_tracer("t"))  # type: ignore[arg-type]
    await publisher.publish([_envelope(1), _envelope(2)])
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    messages = _messages(client.senders["dualbus.customer"])
    span_of = {span.attributes["messaging.message.id"]: span for span in spans}
    for message in messages:
        span = span_of[message.message_id]
        trace_id = format(span.context.trace_id, "032x")
        span_id = format(span.context.span_id, "016x")
        assert message.application_properties["traceparent"].startswith(f"00-{trace_id}-{span_id}-")


@pytest.mark.asyncio
async def test_without_tracing_no_span_is_made_and_no_trace_context_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the no-op tracer provider installed (no traces exporter), messages go out without spans."""
    started: list[str] = []

    class CountingTracer(trace.NoOpTracer):
        def start_span(self, name: str, *_args: object, **_kwargs: object) -> trace.Span:
            started.append(name)
            return trace.INVALID_SPAN

    monkeypatch.setattr(trace, "get_tracer_provider", trace.NoOpTracerProvider)
    monkeypatch.setattr(publisher_module, "_tracer", CountingTracer())
    client = RecordingClient(max_bytes=256 * 1024)
    publisher = Publisher(client, default_topology())  # type: ignore[arg-type]
    assert not tracing_on()
    assert await publisher.publish([_envelope(1), _envelope(2)]) == 2
    assert started == []
    messages = _messages(client.senders["dualbus.customer"])
    assert [m.message_id for m in messages] == [_envelope(1).id, _envelope(2).id]
    assert all("traceparent" not in (m.application_properties or {}) for m in messages)


@pytest.mark.asyncio
async def test_an_event_larger_than_a_message_is_refused() -> None:
    """An envelope that cannot fit even an empty batch raises BusError instead of looping."""
    client = RecordingClient(max_bytes=600)
    with pytest.raises(BusError, match="larger than one message"):
        await Publisher(client, default_topology()).publish([_envelope(1, payload="z" * 2000)])  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_close_closes_every_sender() -> None:
    """Closing the publisher closes the senders it opened."""
    client = RecordingClient(max_bytes=256 * 1024)
    publisher = Publisher(client, default_topology())  # type: ignore[arg-type]
    await publisher.publish([_envelope(1)])
    await publisher.close()
    assert client.senders["dualbus.customer"].closed


@pytest.mark.asyncio
async def test_versions_beyond_32_bits_travel_as_text() -> None:
    """An F&O version (microseconds since the epoch) is sent as a text property the SDK can encode."""
    client = RecordingClient(max_bytes=256 * 1024)
    big = Envelope.for_change(
        origin=Origin.FO,
        area="customer",
        entity="CustomersV3",
        key={"dataAreaId": "usmf", "CustomerAccount": "C-1"},
        operation=Operation.UPDATE,
        source_version=1_795_625_455_144_891,
        time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    await Publisher(client, default_topology()).publish([big])  # type: ignore[arg-type]
    (message,) = _messages(client.senders["dualbus.customer"])
    assert message.application_properties["source_version"] == "1795625455144891"


@pytest.mark.asyncio
async def test_failed_send_marks_its_spans_as_errors() -> None:
    """When Service Bus refuses a batch, the unsent changes' spans end with an error status."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = RecordingClient(max_bytes=256 * 1024)
    client.get_topic_sender("dualbus.customer").failing = True
    publisher = Publisher(client, default_topology(), tracer=provider.get_tracer("t"))  # type: ignore[arg-type]
    with pytest.raises(TransientError):
        await publisher.publish([_envelope(1), _envelope(2)])
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    assert all(span.status.status_code is StatusCode.ERROR for span in spans)
    assert publisher.published == 0


@pytest.mark.asyncio
async def test_batch_refused_as_too_large_is_sent_in_halves() -> None:
    """A batch the service refuses as too large is split and re-sent, in order, until it fits."""
    client = RecordingClient(max_bytes=256 * 1024)
    client.get_topic_sender("dualbus.customer").refuse_over = 3
    envelopes = [_envelope(n) for n in range(10)]
    assert await Publisher(client, default_topology()).publish(envelopes) == 10  # type: ignore[arg-type]
    sender = client.senders["dualbus.customer"]
    assert all(len(batch) <= 3 for batch in sender.sent)
    assert [m.message_id for m in _messages(sender)] == [e.id for e in envelopes]


@pytest.mark.asyncio
async def test_batched_publishing_sends_each_bucket_many_a_message_in_order() -> None:
    """An initial sync's changes go as batch messages per entity and bucket, each record's order kept."""
    client = RecordingClient(max_bytes=256 * 1024)
    topology = default_topology()
    buckets = topology.topic("customer").ordering_buckets
    # 300 customers and a second change of the first ten, after them.
    envelopes = [_envelope(n) for n in range(300)] + [
        _envelope(n).model_copy(update={"source_version": 1000 + n, "id": f"second-{n}"}) for n in range(10)
    ]
    assert await Publisher(client, topology).publish(envelopes, batched=True) == 310  # type: ignore[arg-type]
    messages = _messages(client.senders["dualbus.customer"])
    assert all(is_batch(m) for m in messages)
    assert len(messages) < len(envelopes) // 5
    carried = [(m.session_id, e) for m in messages for e in envelopes_of(m)]
    assert sorted(e.id for _, e in carried) == sorted(e.id for e in envelopes)  # none lost, none twice
    for session, envelope in carried:
        assert session == ordering_bucket("customer", envelope.key, buckets)
    order = [e.id for _, e in carried]
    for n in range(10):  # each record's changes in the order they were given
        assert order.index(_envelope(n).id) < order.index(f"second-{n}")
    assert max(len(envelopes_of(m)) for m in messages) <= MAX_BATCH_CHANGES


def test_batches_close_at_the_change_count_and_the_body_size() -> None:
    same_bucket = [
        e
        for e in (_envelope(n) for n in range(3000))
        if ordering_bucket("customer", e.key, 1) == "customer-0000"
    ]
    groups = bucket_batches(same_bucket[:250], 1)
    assert [len(g) for g in groups] == [MAX_BATCH_CHANGES, MAX_BATCH_CHANGES, 50]
    large = [_envelope(n, payload="z" * 20_000) for n in range(5)]
    assert [len(g) for g in bucket_batches(large, 1)] == [2, 2, 1]
