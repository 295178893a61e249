"""What the broker writes: a delivery's bytes, and a message's copy on its way to a dead-letter queue.

Only the header and the message annotations are written per delivery; the bare message goes out as the
sender wrote it. Dead-lettering rewrites the application properties alone, as Azure's does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import replace

from dualbus.sandbox.servicebus.codec import Symbol, encode_map_header, encode_value, map_spans
from dualbus.sandbox.servicebus.message import APP_PROPERTIES, SentMessage, message_sections

__all__ = ["compose", "with_dead_letter"]

_I64 = struct.Struct(">q")


def compose(
    env: SentMessage,
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


def with_dead_letter(env: SentMessage, reason: str | None, description: str | None) -> SentMessage:
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
