"""A message as the broker keeps it: the sender's bytes, plus the few fields it routes and filters on.

The bare message (properties, application properties, body, footer) is stored and sent exactly as it
arrived; only the header and the message annotations are written by the broker, per delivery.
Sections: https://docs.oasis-open.org/amqp/core/v1.0/os/amqp-core-messaging-v1.0-os.html#section-message-format
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dualbus.sandbox.servicebus.codec import (
    Timestamp,
    decode_at,
    encode,
    encode_list_raw,
    encode_value,
    list_items_at,
    map_spans,
    skip_at,
)
from dualbus.sandbox.servicebus.errors import AmqpDecodeError
from dualbus.sandbox.servicebus.frames import BATCH_FORMAT

__all__ = [
    "APP_PROPERTIES",
    "PROPERTY_NAMES",
    "ScannedMessage",
    "SentMessage",
    "amqp_value",
    "as_mapping",
    "message_sections",
    "parse_message",
    "split_batch",
    "stamp_message_id",
    "timestamp",
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
_BINARY8, _BINARY32, _SMALLULONG = 0xA0, 0xB0, 0x53
_MAP_OR_NULL = frozenset((0xC1, 0xD1, 0x40))


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message as its sender wrote it (immutable): the bare message, and what the broker reads from it.

    Not the pipeline's event envelope (``dualbus.shared.envelope.Envelope``), which travels inside ``bare``.
    """

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


def stamp_message_id(env: SentMessage) -> SentMessage:
    """The message with a message id of the broker's if the sender gave none, as Azure stamps one.

    The JavaScript SDK sends messages without an id unless asked, and cannot settle a received message
    that has none. Azure's ids are GUIDs in 32 hex digits.
    """
    if env.properties and env.properties[0] is not None:
        return env
    new_id = os.urandom(16).hex()
    start = end = 0
    items = b""
    count = 1
    if env.properties is not _NO_PROPERTIES:  # a properties section was sent, with a null id
        for code, sec_start, value_start, sec_end in message_sections(env.bare):
            if code == PROPERTIES:
                # Only the id is written: the sender's other properties keep their exact encodings.
                start, end = sec_start, sec_end
                found, first, list_end = list_items_at(env.bare, value_start)
                if found:
                    items = env.bare[skip_at(env.bare, first) : list_end]
                    count = found
                break
    if items:
        section = b"\x00\x53\x73" + encode_list_raw(count, encode(new_id) + items)
    else:
        # Properties lead the bare message, so without a section of its own the new one goes first:
        # a list8 of one str8 of 32 characters, written directly (most such messages have no properties).
        section = _ID_ONLY_PROPERTIES + new_id.encode()
    bare = env.bare[:start] + section + env.bare[end:]
    shift = len(section) - (end - start)
    return SentMessage(
        bare=bare,
        ann=env.ann,
        ann_count=env.ann_count,
        durable=env.durable,
        priority=env.priority,
        ttl_ms=env.ttl_ms,
        properties=(new_id, *env.properties[1:]),
        app_offset=env.app_offset + shift if env.app_offset >= 0 else -1,
        scheduled_ms=env.scheduled_ms,
    )


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
    size = len(payload)
    while pos < size:
        if payload[pos] != 0x00:
            raise AmqpDecodeError(f"expected a section descriptor at offset {pos}")
        if pos + 3 < size and payload[pos + 1] == _SMALLULONG:
            # Nearly every section is described by a smallulong code (00 53 <code>): read it in place.
            code = payload[pos + 2]
            value_start = pos + 3
        else:
            descriptor, value_start = decode_at(payload, pos + 1)
            code = _section_code(descriptor, pos)
        end = skip_at(payload, value_start)
        out.append((code, pos, value_start, end))
        pos = end
    return out


def _section_code(descriptor: object, pos: int) -> int:
    if isinstance(descriptor, str):
        return _SYMBOLIC.get(descriptor, -1)
    if isinstance(descriptor, int) and not isinstance(descriptor, bool):
        return descriptor
    raise AmqpDecodeError(f"section descriptor at offset {pos} is neither a ulong nor a symbol")


def parse_message(payload: bytes) -> SentMessage:
    """Read an encoded message into a SentMessage; raise AmqpDecodeError if it is not one."""
    sections = payload.sections if isinstance(payload, ScannedMessage) else message_sections(payload)
    header: tuple[Any, ...] = _NO_HEADER
    properties: tuple[Any, ...] = _NO_PROPERTIES
    ann = b""
    ann_count = 0
    scheduled: int | None = None
    bare_start = -1
    app_offset = -1
    for code, start, value_start, _end in sections:
        if code >= PROPERTIES:
            # The bare message is everything from its first section on.
            if bare_start < 0:
                bare_start = start
            if code == PROPERTIES:
                properties = _padded(_list_section(payload, value_start, "properties"), len(PROPERTY_NAMES))
            elif code == APP_PROPERTIES:
                # Decoded only when a filter asks; a section that is not even a map is refused now.
                if payload[value_start] not in _MAP_OR_NULL:
                    raise AmqpDecodeError(f"the application-properties section at {value_start} is not a map")
                app_offset = value_start
        elif code == HEADER:
            header = _padded(_list_section(payload, value_start, "header"), 3)
        elif code == MESSAGE_ANN:
            ann, ann_count, scheduled = _sender_annotations(payload, value_start)
    if bare_start < 0:
        bare_start = len(payload)
    # Most messages are all bare: bytes() of a bytes object is that object, and of a batch's
    # ScannedMessage one copy that drops the layout it carried.
    bare = bytes(payload[bare_start:]) if bare_start else bytes(payload)
    return SentMessage(
        bare=bare,
        ann=ann,
        ann_count=ann_count,
        durable=bool(header[0]),
        priority=header[1],
        ttl_ms=header[2],
        properties=properties,
        app_offset=app_offset - bare_start if app_offset >= 0 else -1,
        scheduled_ms=scheduled or None,
    )


_NO_HEADER: tuple[Any, ...] = (None, None, None)
_NO_PROPERTIES: tuple[Any, ...] = (None,) * len(PROPERTY_NAMES)
_ID_ONLY_PROPERTIES = b"\x00\x53\x73\xc0\x23\x01\xa1\x20"


def _list_section(payload: bytes, value_start: int, name: str) -> list[Any]:
    value = decode_at(payload, value_start)[0]
    if not value:
        return []
    if not isinstance(value, list):
        raise AmqpDecodeError(f"the {name} section at offset {value_start} is not a list")
    return value


def _padded(values: list[Any], length: int) -> tuple[Any, ...]:
    """The values of a list section, with the trailing nulls a sender may leave out put back."""
    if len(values) < length:
        values += [None] * (length - len(values))
    return tuple(values)


def _sender_annotations(payload: bytes, value_start: int) -> tuple[bytes, int, int | None]:
    """The sender's message annotations re-encoded without the broker's keys, their count, and the
    scheduled enqueue time if one was asked for."""
    ann = bytearray()
    count = 0
    scheduled: int | None = None
    for key, raw in map_spans(payload, value_start)[0]:
        if str(key) in _BROKER_KEYS:
            continue
        if key == "x-opt-scheduled-enqueue-time":
            when = decode_at(raw, 0)[0]
            try:
                scheduled = int(when or 0)
            except (TypeError, ValueError):
                raise AmqpDecodeError("x-opt-scheduled-enqueue-time is not a timestamp") from None
        encode_value(key, ann)
        ann += raw
        count += 1
    return bytes(ann), count, scheduled


class ScannedMessage(bytes):
    """One encoded message of a batch, with the section layout split_batch found validating it.

    It is still plain bytes to every caller; parse_message reads the layout instead of scanning again.
    """

    sections: list[tuple[int, int, int, int]]


def split_batch(payload: bytes, message_format: int | None = None) -> list[bytes] | None:
    """The messages inside a batch transfer, or None if ``payload`` is a single message.

    A batch is a batch by its transfer's message format (``BATCH_FORMAT``); its data sections each hold
    one encoded message, and whatever else the envelope carries (the JavaScript SDK's starts with an empty
    header) describes no message: a declared batch that does not hold messages is refused. Without a
    known format a batch is told by its shape: no header, and data sections that each hold a message.
    """
    if message_format is not None and message_format != BATCH_FORMAT:
        return None
    declared = message_format == BATCH_FORMAT
    sections = message_sections(payload)
    if not declared and any(code == HEADER for code, *_ in sections):
        return None
    try:
        out = _batch_items(payload, sections)
    except AmqpDecodeError:
        if declared:
            raise
        return None
    if declared and not out:
        raise AmqpDecodeError("the batch holds no message")
    return out or None


def _batch_items(payload: bytes, sections: list[tuple[int, int, int, int]]) -> list[bytes]:
    """The encoded message in each data section; AmqpDecodeError if one holds anything else."""
    spans = []
    for code, _, value_start, end in sections:
        if code != DATA:
            continue
        constructor = payload[value_start]
        if constructor == _BINARY8:
            spans.append((value_start + 2, end))
        elif constructor == _BINARY32:
            spans.append((value_start + 5, end))
        else:
            raise AmqpDecodeError(f"the data section at {value_start} is not binary")
    # Each message is copied out once, straight from the transfer, and keeps the layout found here.
    view = memoryview(payload)
    out: list[bytes] = []
    for start, end in spans:
        if start == end or payload[start] != 0x00:
            raise AmqpDecodeError(f"the data section at {start} does not hold an encoded message")
        item = ScannedMessage(view[start:end])
        item.sections = message_sections(item)
        out.append(item)
    return out


def timestamp(ms: int) -> Timestamp:
    """An AMQP timestamp for ``ms`` milliseconds since the epoch."""
    return Timestamp(ms)


def as_mapping(value: object) -> Mapping[str, Any]:
    """A decoded AMQP map with text keys (request bodies use symbols or strings interchangeably)."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items()}


def amqp_value(env: SentMessage) -> Any:  # noqa: ANN401 - AMQP values are dynamically typed
    """The decoded amqp-value body of a message (request-response bodies), or None."""
    for code, _, value_start, _ in message_sections(env.bare):
        if code == 0x77:  # noqa: PLR2004 - the amqp-value section code
            return decode_at(env.bare, value_start)[0]
    return None
