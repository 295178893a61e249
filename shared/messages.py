"""Envelope ↔ Service Bus message: ids, ordering buckets, routing properties and trace context.

``checked_envelope`` is the other way with every check a consumer makes before it writes anything: the
message must say what its body says (docs/processing.md, Settlement). This module knows the
azure-servicebus message types but never talks to the bus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson
from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage
from opentelemetry import propagate

from dualbus.shared.envelope import CONTENT_TYPE, Envelope, KeyValue, time_problem
from dualbus.shared.errors import EnvelopeError, RejectedError, Rejection
from dualbus.shared.routing import is_replay_id
from dualbus.shared.topology import ORIGINAL_ID_PROPERTY, REPLAY_COUNT_PROPERTY

__all__ = [
    "DEFAULT_BUCKETS",
    "ROUTING_PROPERTIES",
    "TRACE_PROPERTIES",
    "application_properties",
    "body_bytes",
    "checked_envelope",
    "envelope_from_message",
    "normal_content_type",
    "ordering_bucket",
    "routing_properties",
    "to_message",
    "trace_context",
]

# Copied to application properties so that subscription rules filter without reading bodies.
ROUTING_PROPERTIES = ("area", "entity", "company", "operation", "origin", "source_version")
# W3C trace context (https://www.w3.org/TR/trace-context/), as the OpenTelemetry propagator writes it.
TRACE_PROPERTIES = ("traceparent", "tracestate")
# The topology's default (``TopicSpec.ordering_buckets``).
DEFAULT_BUCKETS = 32


def ordering_bucket(area: str, key: Mapping[str, KeyValue], buckets: int = DEFAULT_BUCKETS) -> str:
    """The session id of a record: changes to one record share it, so they are applied in order.

    A stable hash (not Python's salted ``hash``) spreads records over ``buckets`` sessions per area, which
    bounds how many consumers can work on an area at once while keeping each record's changes in order.
    """
    canonical = orjson.dumps([area, dict(key)], option=orjson.OPT_SORT_KEYS)
    digest = int.from_bytes(hashlib.blake2b(canonical, digest_size=8).digest(), "big")
    return f"{area}-{digest % buckets:04d}"


def to_message(
    envelope: Envelope, *, buckets: int = DEFAULT_BUCKETS, message_id: str | None = None
) -> ServiceBusMessage:
    """The Service Bus message of an envelope; the current trace context travels with it."""
    properties: dict[str | bytes, Any] = {}
    properties.update(routing_properties(envelope))
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    properties.update({name: carrier[name] for name in TRACE_PROPERTIES if name in carrier})
    return ServiceBusMessage(
        envelope.to_json(),
        message_id=message_id or envelope.id,
        session_id=ordering_bucket(envelope.area, envelope.key, buckets),
        content_type=CONTENT_TYPE,
        subject=f"{envelope.entity}.{envelope.operation.value}",
        application_properties=properties,
    )


def routing_properties(envelope: Envelope) -> dict[str, str]:
    """The envelope's routing fields, as text application properties.

    Text throughout: the SDK (7.15, ``_pyamqp/_encode.py``) encodes a Python int property as a 32-bit AMQP
    int and refuses larger ones, and F&O versions (microseconds since the epoch) are far larger.
    """
    values: dict[str, str | None] = {
        "area": envelope.area,
        "entity": envelope.entity,
        "company": envelope.company,
        "operation": envelope.operation.value,
        "origin": envelope.origin.value,
        "source_version": str(envelope.source_version),
    }
    return {name: value for name, value in values.items() if value is not None}


def application_properties(message: ServiceBusMessage) -> dict[str, Any]:
    """A message's application properties with text keys and values (received ones may carry bytes)."""
    raw = message.application_properties or {}
    return {_text(name): _text(value) if isinstance(value, bytes) else value for name, value in raw.items()}


def trace_context(message: ServiceBusMessage) -> dict[str, str]:
    """The W3C trace context a message carries, ready for ``opentelemetry.propagate.extract``."""
    properties = application_properties(message)
    return {name: str(properties[name]) for name in TRACE_PROPERTIES if name in properties}


def envelope_from_message(message: ServiceBusMessage | ServiceBusReceivedMessage) -> Envelope:
    """Decode and validate a message's envelope; raise EnvelopeError saying what is wrong."""
    body = body_bytes(message.body)
    if not body:
        raise EnvelopeError("the message has an empty body")
    return Envelope.from_json(body)


def checked_envelope(
    message: ServiceBusReceivedMessage, *, buckets: int = DEFAULT_BUCKETS, now: datetime | None = None
) -> Envelope:
    """A received message's envelope, once the message agrees with it in every way ``to_message`` sets.

    EnvelopeError when the body is no envelope; RejectedError naming the check otherwise: the content type,
    the routing properties, subject, message id and session id (an ordering bucket of ``buckets``), and a
    plausible event time.
    """
    envelope = envelope_from_message(message)
    # Read once: the SDK builds the dict anew on every access.
    properties = application_properties(message)
    checks: tuple[tuple[Rejection, _Check], ...] = (
        (Rejection.WRONG_CONTENT_TYPE, lambda m, _e, _p: _content_type_problem(m)),
        (Rejection.PROPERTY_MISMATCH, _property_problem),
        (Rejection.PROPERTY_MISMATCH, lambda m, e, p: _id_problem(m, e, p, buckets)),
        (Rejection.IMPLAUSIBLE_TIME, lambda _m, e, _p: time_problem(e.time, now)),
    )
    for reason, check in checks:
        problem = check(message, envelope, properties)
        if problem is not None:
            raise RejectedError(f"event {envelope.id}: {problem}", reason=reason)
    return envelope


_Check = Callable[[ServiceBusReceivedMessage, Envelope, Mapping[str, Any]], str | None]


def _content_type_problem(message: ServiceBusReceivedMessage) -> str | None:
    # Media types and their parameters are case-insensitive (RFC 9110, section 8.3.1); spacing is free.
    given = message.content_type
    if given is not None and normal_content_type(given) == normal_content_type(CONTENT_TYPE):
        return None
    return f"the content type is {_shown(given)}, not the envelope's {CONTENT_TYPE!r}"


def normal_content_type(content_type: str) -> str:
    """A content type as compared: media types and their parameters are case-insensitive (RFC 9110,
    section 8.3.1), and spacing is free."""
    return "".join(content_type.lower().split())


def _property_problem(
    message: ServiceBusReceivedMessage, envelope: Envelope, properties: Mapping[str, Any]
) -> str | None:
    wanted: dict[str, str | None] = dict.fromkeys(ROUTING_PROPERTIES)
    wanted.update(routing_properties(envelope))
    for name, value in wanted.items():
        if properties.get(name) != value:
            said = f"says {value!r}" if value is not None else f"has no {name}"
            return f"the application property {name} is {_shown(properties.get(name))}, the body {said}"
    subject = f"{envelope.entity}.{envelope.operation.value}"
    if message.subject is not None and message.subject != subject:
        return f"the subject is {message.subject!r}, the body says {subject!r}"
    return None


def _id_problem(
    message: ServiceBusReceivedMessage, envelope: Envelope, properties: Mapping[str, Any], buckets: int
) -> str | None:
    # A replay (``dualbus dlq replay``) is sent with a replay id of the original (``replay_id``).
    replayed = properties.get(ORIGINAL_ID_PROPERTY) == envelope.id and is_replay_id(
        message.message_id, envelope.id, properties.get(REPLAY_COUNT_PROPERTY)
    )
    if message.message_id != envelope.id and not replayed:
        return f"the message id {message.message_id!r} is not the envelope's id"
    bucket = ordering_bucket(envelope.area, envelope.key, buckets)
    if message.session_id != bucket:
        given = _shown(message.session_id)
        return f"the session id is {given}, but the record's ordering bucket is {bucket!r}"
    return None


def _shown(value: object) -> str:
    return "missing" if value is None else f"{type(value).__name__} {value!r:.60}"


def body_bytes(body: object) -> bytes:
    """A received body's data bytes (one data section or several, joined); EnvelopeError otherwise."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, Iterable):
        parts = list(body)
        if all(isinstance(part, bytes | bytearray | memoryview) for part in parts):
            # One data section, as dualbus sends: no join (it copies the whole body).
            return parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)
    raise EnvelopeError(f"the message body is a {type(body).__name__}, not data bytes")


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
