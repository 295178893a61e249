"""A message as the broker keeps it: the sender's bytes, plus the few fields it routes and filters on.

The bare message (properties, application properties, body, footer) is stored and sent exactly as it
arrived; only the header and the message annotations are written by the broker, per delivery.
Sections: https://docs.oasis-open.org/amqp/core/v1.0/os/amqp-core-messaging-v1.0-os.html#section-message-format
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sandbox.servicebus.codec import (
    Symbol,
    Timestamp,
    decode_at,
    encode_map_header,
    encode_value,
    map_spans,
    skip_at,
)
from sandbox.servicebus.errors import AmqpDecodeError

__all__ = [
    "PROPERTY_NAMES",
    "Envelope",
    "amqp_value",
    "as_mapping",
    "compose",
    "message_sections",
    "parse_message",
    "split_batch",
    "timestamp",
    "with_dead_letter",
]

HEADER, DELIVERY_ANN, MESSAGE_ANN, PROPERTIES, APP_PROPERTIES, DATA, FOOTER = (
    0x70,
    0x71,
    0x72,
    0x73,
    0x74,
    0x75,
    0x78,
)
_SYMBOLIC = {
    "amqp:header:list": 0x70,
    "amqp:delivery-annotations:map": 0x71,
    "amqp:message-annotations:map": 0x72,
    "amqp:properties:list": 0x73,
    "amqp:application-properties:map": 0x74,
    "amqp:data:binary": 0x75,
    "amqp:amqp-sequence:list": 0x76,
    "amqp:amqp-value:*": 0x77,
    "amqp:footer:map": 0x78,
}
# Annotations only the broker may set: a sender's copy would lie about sequence, time or lock.
_BROKER_KEYS = frozenset(
    {
        "x-opt-sequence-number",
        "x-opt-enqueued-time",
        "x-opt-locked-until",
        "x-opt-lock-token",
        "x-opt-message-state",
        "x-opt-enqueue-sequence-number",
    }
)
PROPERTY_NAMES = (
    "MessageId",
    "UserId",
    "To",
    "Label",
    "ReplyTo",
    "CorrelationId",
    "ContentType",
    "ContentEncoding",
    "AbsoluteExpiryTime",
    "CreationTime",
    "SessionId",
    "GroupSequence",
    "ReplyToSessionId",
)
_I64 = struct.Struct(">q")


@dataclass(frozen=True, slots=True)
class Envelope:
    """The immutable part of a stored message: what the sender wrote, and what the broker reads from it."""

    bare: bytes
    ann: bytes = b""
    ann_count: int = 0
    durable: bool = False
    priority: int | None = None
    ttl_ms: int | None = None
    properties: tuple[Any, ...] = ()
    app_offset: int = -1
    scheduled_ms: int | None = None
    _app_cache: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)

    @property
    def message_id(self) -> str | None:
        """The message id as text (ids may be strings, UUIDs, numbers or binary on the wire)."""
        return _text(self.properties[0]) if self.properties else None

    @property
    def session_id(self) -> str | None:
        """The session id (the AMQP group id)."""
        return _text(self.properties[10]) if len(self.properties) > 10 else None  # noqa: PLR2004

    def system_properties(self) -> dict[str, object]:
        """Properties by their Service Bus names, for filters (``Label`` is the subject)."""
        return {
            name: value
            for name, value in zip(PROPERTY_NAMES, self.properties, strict=False)
            if value is not None
        }

    def application_properties(self) -> dict[str, Any]:
        """The user properties, decoded once on first use (only filters and dead-lettering need them)."""
        if not self._app_cache:
            value: dict[str, Any] = {}
            if self.app_offset >= 0:
                decoded, _ = decode_at(self.bare, self.app_offset)
                value = {str(k): v for k, v in (decoded or {}).items()}
            self._app_cache.append(value)
        return self._app_cache[0]


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def message_sections(payload: bytes) -> list[tuple[int, int, int, int]]:
    """(code, section start, value start, end) of every section in an encoded message."""
    out = []
    pos = 0
    while pos < len(payload):
        if payload[pos] != 0x00:
            raise AmqpDecodeError(f"expected a section descriptor at offset {pos}")
        descriptor, value_start = decode_at(payload, pos + 1)
        code = _SYMBOLIC.get(descriptor, -1) if isinstance(descriptor, str) else descriptor
        end = skip_at(payload, value_start)
        out.append((code, pos, value_start, end))
        pos = end
    return out


def parse_message(payload: bytes) -> Envelope:
    """Read an encoded message into an Envelope; raise AmqpDecodeError if it is not one."""
    sections = message_sections(payload)
    header: list[Any] = []
    properties: list[Any] = []
    ann = bytearray()
    ann_count = 0
    scheduled: int | None = None
    bare_start = len(payload)
    app_offset = -1
    for code, start, value_start, _end in sections:
        if code == HEADER:
            header = decode_at(payload, value_start)[0] or []
        elif code == MESSAGE_ANN:
            for key, raw in map_spans(payload, value_start)[0]:
                if str(key) in _BROKER_KEYS:
                    continue
                if key == "x-opt-scheduled-enqueue-time":
                    scheduled = int(decode_at(raw, 0)[0] or 0)
                encode_value(key, ann)
                ann += raw
                ann_count += 1
        elif code >= PROPERTIES:
            bare_start = min(bare_start, start)
            if code == PROPERTIES:
                properties = decode_at(payload, value_start)[0] or []
            elif code == APP_PROPERTIES:
                app_offset = value_start
    header += [None] * (3 - len(header))
    bare = bytes(payload[bare_start:])
    return Envelope(
        bare=bare,
        ann=bytes(ann),
        ann_count=ann_count,
        durable=bool(header[0]),
        priority=header[1],
        ttl_ms=header[2],
        properties=tuple(properties) + (None,) * (13 - len(properties)),
        app_offset=app_offset - bare_start if app_offset >= 0 else -1,
        scheduled_ms=scheduled or None,
    )


def split_batch(payload: bytes) -> list[bytes] | None:
    """The messages inside a batch transfer, or None if ``payload`` is a single message.

    Proton does not expose the transfer's message format (0x80013700 marks a batch), so a batch is told
    apart by its shape: no header, and data sections that each hold a whole encoded message.
    """
    sections = message_sections(payload)
    if any(code == HEADER for code, *_ in sections):
        return None
    data = [decode_at(payload, value_start)[0] for code, _, value_start, _ in sections if code == DATA]
    if not data:
        return None
    try:
        for item in data:
            if not item or item[0] != 0x00:
                return None
            message_sections(item)
    except AmqpDecodeError:
        return None
    return [bytes(item) for item in data]


def compose(
    env: Envelope,
    *,
    sequence_number: int,
    enqueued_ms: int,
    delivery_count: int,
    locked_until_ms: int | None = None,
    extra: Iterable[tuple[str, object]] = (),
) -> bytes:
    """The bytes of one delivery: a fresh header and annotations, then the bare message as received."""
    out = bytearray(b"\x00\x53\x70")
    header = bytearray()
    encode_value(env.durable, header)
    encode_value(None if env.priority is None else env.priority, header)
    header += b"\x40" if env.ttl_ms is None else b"\x70" + struct.pack(">I", env.ttl_ms)
    header += b"\x42\x70" + struct.pack(">I", delivery_count)
    out += bytes((0xC0, len(header) + 1, 5)) + header
    entries = bytearray(env.ann)
    entries += b"\xa3\x15x-opt-sequence-number\x81" + _I64.pack(sequence_number)
    entries += b"\xa3\x13x-opt-enqueued-time\x83" + _I64.pack(enqueued_ms)
    count = env.ann_count + 2
    if locked_until_ms is not None:
        entries += b"\xa3\x12x-opt-locked-until\x83" + _I64.pack(locked_until_ms)
        count += 1
    for key, value in extra:
        encode_value(Symbol(key), entries)
        encode_value(value, entries)
        count += 1
    out += b"\x00\x53\x72" + encode_map_header(count, len(entries)) + entries
    out += env.bare
    return bytes(out)


def with_dead_letter(env: Envelope, reason: str | None, description: str | None) -> Envelope:
    """A copy whose application properties carry the dead-letter reason and description, as Azure's do."""
    sections = message_sections(env.bare)
    out = bytearray()
    app_written = False
    for code, start, value_start, end in sections:
        if code == APP_PROPERTIES:
            out += _dead_letter_app_section(env.bare, value_start, reason, description)
            app_written = True
            continue
        if code > APP_PROPERTIES and not app_written:
            out += _dead_letter_app_section(b"\xc1\x01\x00", 0, reason, description)
            app_written = True
        out += env.bare[start:end]
    if not app_written:
        out += _dead_letter_app_section(b"\xc1\x01\x00", 0, reason, description)
    new_bare = bytes(out)
    app_offset = message_sections(new_bare)
    offset = next(vs for code, _, vs, _ in app_offset if code == APP_PROPERTIES)
    return replace(env, bare=new_bare, app_offset=offset, _app_cache=[])


def _dead_letter_app_section(
    buf: bytes, value_start: int, reason: str | None, description: str | None
) -> bytes:
    pairs, _ = map_spans(buf, value_start)
    body = bytearray()
    count = 0
    for key, raw in pairs:
        if key in ("DeadLetterReason", "DeadLetterErrorDescription"):
            continue
        encode_value(key, body)
        body += raw
        count += 1
    for key, value in (("DeadLetterReason", reason), ("DeadLetterErrorDescription", description)):
        if value is not None:
            encode_value(key, body)
            encode_value(value, body)
            count += 1
    return b"\x00\x53\x74" + encode_map_header(count, len(body)) + bytes(body)


def timestamp(ms: int) -> Timestamp:
    """An AMQP timestamp for ``ms`` milliseconds since the epoch."""
    return Timestamp(ms)


def as_mapping(value: object) -> Mapping[str, Any]:
    """A decoded AMQP map with text keys (request bodies use symbols or strings interchangeably)."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items()}


def amqp_value(env: Envelope) -> Any:  # noqa: ANN401 - AMQP values are dynamically typed
    """The decoded amqp-value body of a message (request-response bodies), or None."""
    for code, _, value_start, _ in message_sections(env.bare):
        if code == 0x77:  # noqa: PLR2004 - the amqp-value section code
            return decode_at(env.bare, value_start)[0]
    return None
