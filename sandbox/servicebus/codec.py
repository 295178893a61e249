"""The AMQP 1.0 type system, encoded and decoded by hand.

Messages pass through the emulator as bytes: it reads the few fields it routes on and writes the few
annotations it owns, and keeps every other byte as the sender wrote it. Going through proton's ``Data``
for that was the emulator's main cost, and re-encoding would also change the sender's value types.
Type codes: https://docs.oasis-open.org/amqp/core/v1.0/os/amqp-core-types-v1.0-os.html
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dualbus.sandbox.servicebus.errors import AmqpDecodeError

__all__ = [
    "Described",
    "Symbol",
    "Timestamp",
    "UInt",
    "decode",
    "decode_at",
    "encode",
    "encode_map_header",
    "encode_value",
    "map_spans",
    "skip_at",
]


class Symbol(str):
    """An AMQP symbol (ASCII name), as opposed to a UTF-8 string."""

    __slots__ = ()


class Timestamp(int):
    """An AMQP timestamp: milliseconds since the Unix epoch."""

    __slots__ = ()


class UInt(int):
    """An AMQP uint, for fields the spec types as unsigned 32-bit."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Described:
    """A described value: a descriptor (usually a ulong code or a symbol) and the value it describes."""

    descriptor: object
    value: object


_Decoder = Callable[[bytes, int], tuple[Any, int]]
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
# Sizes and counts below 256 fit the one-byte encodings; small ints fit one signed byte.
_SHORT = 256
_SMALL_MIN, _SMALL_MAX = -128, 127
_MAP8 = 0xC1
_NULL, _STR8, _SYM8 = 0x40, 0xA1, 0xA3
_TEXT8 = frozenset((_STR8, _SYM8))


def _fixed(size: int, conv: Callable[[bytes, int], Any]) -> _Decoder:
    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        return conv(buf, pos), pos + size

    return dec


def _const(value: object) -> _Decoder:
    def dec(_buf: bytes, pos: int) -> tuple[Any, int]:
        return value, pos

    return dec


def _variable(width: int, conv: Callable[[bytes], Any]) -> _Decoder:
    unpack = (_U8 if width == 1 else _U32).unpack_from

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        (size,) = unpack(buf, pos)
        start = pos + width
        return conv(bytes(buf[start : start + size])), start + size

    return dec


def _compound(width: int, is_map: bool) -> _Decoder:
    unpack = (_U8 if width == 1 else _U32).unpack_from

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        (count,) = unpack(buf, pos + width)
        pos += 2 * width
        items: list[Any] = []
        append = items.append
        for _ in range(count):
            # Message properties and application properties are mostly nulls and short strings:
            # read those here rather than through a decode_at call each. Any error still surfaces
            # as the enclosing decode_at's AmqpDecodeError, as it would from a nested call.
            code = buf[pos]
            if code == _NULL:
                append(None)
                pos += 1
            elif code in _TEXT8:
                start = pos + 2
                pos = start + buf[pos + 1]
                text = str(buf[start:pos], "utf-8" if code == _STR8 else "ascii")
                append(text if code == _STR8 else Symbol(text))
            else:
                item, pos = decode_at(buf, pos)
                append(item)
        if is_map:
            return dict(zip(items[::2], items[1::2], strict=True)), pos
        return items, pos

    return dec


def _array(width: int) -> _Decoder:
    unpack = (_U8 if width == 1 else _U32).unpack_from

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        (count,) = unpack(buf, pos + width)
        pos += 2 * width
        code = buf[pos]
        pos += 1
        descriptor = None
        if code == 0x00:
            descriptor, pos = decode_at(buf, pos)
            code = buf[pos]
            pos += 1
        element = _element_decoder(code)
        if count > len(buf):
            # Null, true, false and zero elements take no bytes, so the buffer's end would not stop a
            # sender's count of four billion; no real array has more elements than its message has bytes.
            raise AmqpDecodeError(f"array of {count} elements in a {len(buf)}-byte buffer")
        items = []
        for _ in range(count):
            item, pos = element(buf, pos)
            items.append(item if descriptor is None else Described(descriptor, item))
        return items, pos

    return dec


def _decode_described(buf: bytes, pos: int) -> tuple[Any, int]:
    descriptor, pos = decode_at(buf, pos)
    value, pos = decode_at(buf, pos)
    return Described(descriptor, value), pos


def _utf8(raw: bytes) -> str:
    return raw.decode("utf-8")


def _symbol(raw: bytes) -> Symbol:
    return Symbol(raw.decode("ascii"))


_DECODERS: dict[int, _Decoder] = {
    0x00: _decode_described,
    0x40: _const(None),
    0x41: _const(True),
    0x42: _const(False),
    0x43: _const(0),
    0x44: _const(0),
    0x45: lambda _buf, pos: ([], pos),  # a fresh list each time: callers may extend what they get
    0x50: _fixed(1, lambda b, p: _U8.unpack_from(b, p)[0]),
    0x51: _fixed(1, lambda b, p: _I8.unpack_from(b, p)[0]),
    0x52: _fixed(1, lambda b, p: _U8.unpack_from(b, p)[0]),
    0x53: _fixed(1, lambda b, p: _U8.unpack_from(b, p)[0]),
    0x54: _fixed(1, lambda b, p: _I8.unpack_from(b, p)[0]),
    0x55: _fixed(1, lambda b, p: _I8.unpack_from(b, p)[0]),
    0x56: _fixed(1, lambda b, p: b[p] != 0),
    0x60: _fixed(2, lambda b, p: _U16.unpack_from(b, p)[0]),
    0x61: _fixed(2, lambda b, p: _I16.unpack_from(b, p)[0]),
    0x70: _fixed(4, lambda b, p: _U32.unpack_from(b, p)[0]),
    0x71: _fixed(4, lambda b, p: _I32.unpack_from(b, p)[0]),
    0x72: _fixed(4, lambda b, p: _F32.unpack_from(b, p)[0]),
    0x73: _fixed(4, lambda b, p: chr(_U32.unpack_from(b, p)[0])),
    0x74: _fixed(4, lambda b, p: bytes(b[p : p + 4])),
    0x80: _fixed(8, lambda b, p: _U64.unpack_from(b, p)[0]),
    0x81: _fixed(8, lambda b, p: _I64.unpack_from(b, p)[0]),
    0x82: _fixed(8, lambda b, p: _F64.unpack_from(b, p)[0]),
    0x83: _fixed(8, lambda b, p: Timestamp(_I64.unpack_from(b, p)[0])),
    0x84: _fixed(8, lambda b, p: bytes(b[p : p + 8])),
    0x94: _fixed(16, lambda b, p: bytes(b[p : p + 16])),
    0x98: _fixed(16, lambda b, p: uuid.UUID(bytes=bytes(b[p : p + 16]))),
    0xA0: _variable(1, bytes),
    0xA1: _variable(1, _utf8),
    0xA3: _variable(1, _symbol),
    0xB0: _variable(4, bytes),
    0xB1: _variable(4, _utf8),
    0xB3: _variable(4, _symbol),
    0xC0: _compound(1, is_map=False),
    0xC1: _compound(1, is_map=True),
    0xD0: _compound(4, is_map=False),
    0xD1: _compound(4, is_map=True),
    0xE0: _array(1),
    0xF0: _array(4),
}


def _element_decoder(code: int) -> _Decoder:
    try:
        return _DECODERS[code]
    except KeyError:
        raise AmqpDecodeError(f"unknown AMQP type code 0x{code:02x}") from None


def decode_at(buf: bytes, pos: int) -> tuple[Any, int]:
    """Decode the value whose constructor starts at ``pos``; return it and the offset after it."""
    try:
        code = buf[pos]
        return _element_decoder(code)(buf, pos + 1)
    # OverflowError: a char beyond chr's range; TypeError: a map key Python cannot hash (a list);
    # RecursionError: values nested deeper than the interpreter allows. All are the sender's bytes.
    except (IndexError, struct.error, ValueError, OverflowError, TypeError, RecursionError) as exc:
        raise AmqpDecodeError(f"malformed AMQP value at offset {pos}") from exc


_FIXED_WIDTH = {
    **dict.fromkeys((0x40, 0x41, 0x42, 0x43, 0x44, 0x45), 0),
    **dict.fromkeys((0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56), 1),
    **dict.fromkeys((0x60, 0x61), 2),
    **dict.fromkeys((0x70, 0x71, 0x72, 0x73, 0x74), 4),
    **dict.fromkeys((0x80, 0x81, 0x82, 0x83, 0x84), 8),
    **dict.fromkeys((0x94, 0x98), 16),
}
# Constructors followed by a one-byte or a four-byte size: variable-width values, compounds and arrays.
_SIZED_1, _SIZED_4 = (
    frozenset((0xA0, 0xA1, 0xA3, 0xC0, 0xC1, 0xE0)),
    frozenset((0xB0, 0xB1, 0xB3, 0xD0, 0xD1, 0xF0)),
)


def skip_at(buf: bytes, pos: int) -> int:
    """The offset just after the value at ``pos``, found from its size field without decoding it."""
    try:
        code = buf[pos]
        # Sized values (strings, binaries, lists, maps) are what sections and map values mostly hold.
        if code in _SIZED_1:
            end = pos + 2 + buf[pos + 1]
        elif code in _SIZED_4:
            end = pos + 5 + _U32.unpack_from(buf, pos + 1)[0]
        elif code == 0x00:
            return skip_at(buf, skip_at(buf, pos + 1))
        elif code in _FIXED_WIDTH:
            end = pos + 1 + _FIXED_WIDTH[code]
        else:
            raise AmqpDecodeError(f"unknown AMQP type code 0x{code:02x}")
    except (IndexError, struct.error, RecursionError) as exc:
        raise AmqpDecodeError(f"malformed AMQP value at offset {pos}") from exc
    if end > len(buf):
        raise AmqpDecodeError(f"AMQP value at offset {pos} runs past the end")
    return end


def decode(buf: bytes) -> Any:  # noqa: ANN401 - AMQP values are dynamically typed
    """Decode one value that fills ``buf``."""
    value, _ = decode_at(buf, 0)
    return value


def map_spans(buf: bytes, pos: int) -> tuple[list[tuple[Any, bytes]], int]:
    """Read a map as (decoded key, raw encoded value) pairs, so values can be copied with their types."""
    code = buf[pos]
    if code not in (0xC1, 0xD1):
        raise AmqpDecodeError(f"expected a map at offset {pos}, found type 0x{code:02x}")
    width = 1 if code == _MAP8 else 4
    unpack = (_U8 if width == 1 else _U32).unpack_from
    (count,) = unpack(buf, pos + 1 + width)
    pos += 1 + 2 * width
    pairs = []
    for _ in range(count // 2):
        key, pos = decode_at(buf, pos)
        start = pos
        pos = skip_at(buf, pos)
        pairs.append((key, bytes(buf[start:pos])))
    return pairs, pos


def _encode_int(value: int, out: bytearray) -> None:
    if isinstance(value, Timestamp):
        out += b"\x83" + _I64.pack(value)
    elif isinstance(value, UInt):
        out += b"\x52" + _U8.pack(value) if 0 <= value < _SHORT else b"\x70" + _U32.pack(value)
    elif _SMALL_MIN <= value <= _SMALL_MAX:
        out += b"\x55" + _I8.pack(value)
    else:
        out += b"\x81" + _I64.pack(value)


def _encode_bytes(code8: int, raw: bytes, out: bytearray) -> None:
    if len(raw) < _SHORT:
        out.append(code8)
        out.append(len(raw))
    else:
        out.append(code8 + 0x10)
        out += _U32.pack(len(raw))
    out += raw


def _encode_compound(code8: int, count: int, body: bytes | bytearray, out: bytearray) -> None:
    if len(body) + 1 < _SHORT and count < _SHORT:
        out += bytes((code8, len(body) + 1, count))
    else:
        out.append(code8 + 0x10)
        out += _U32.pack(len(body) + 4) + _U32.pack(count)
    out += body


def encode_map_header(count: int, body_len: int) -> bytes:
    """The constructor and sizes of a map whose ``count`` keys and values take ``body_len`` bytes."""
    if body_len + 1 < _SHORT and 2 * count < _SHORT:
        return bytes((0xC1, body_len + 1, 2 * count))
    return b"\xd1" + _U32.pack(body_len + 4) + _U32.pack(2 * count)


def encode_list_raw(count: int, body: bytes) -> bytes:
    """A list of ``count`` items already encoded one after another in ``body``."""
    out = bytearray()
    _encode_compound(0xC0, count, body, out)
    return bytes(out)


def list_items_at(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(item count, first item's offset, end) of the list encoded at ``pos``."""
    code = buf[pos]
    if code in (0x45, 0x40):
        return 0, pos + 1, pos + 1
    if code == 0xC0:  # noqa: PLR2004 - list8
        return buf[pos + 2], pos + 3, pos + 2 + buf[pos + 1]
    if code == 0xD0:  # noqa: PLR2004 - list32
        size = _U32.unpack_from(buf, pos + 1)[0]
        return _U32.unpack_from(buf, pos + 5)[0], pos + 9, pos + 5 + size
    raise ValueError(f"no list at offset {pos}")


def encode_value(value: object, out: bytearray) -> None:  # noqa: PLR0912 - one branch per AMQP type
    """Append the encoding of ``value``, choosing the AMQP type from its Python type."""
    if value is None:
        out.append(0x40)
    elif value is True:
        out.append(0x41)
    elif value is False:
        out.append(0x42)
    elif isinstance(value, int):
        _encode_int(value, out)
    elif isinstance(value, float):
        out += b"\x82" + _F64.pack(value)
    elif isinstance(value, Symbol):
        _encode_bytes(0xA3, value.encode("ascii"), out)
    elif isinstance(value, str):
        _encode_bytes(0xA1, value.encode("utf-8"), out)
    elif isinstance(value, bytes | bytearray | memoryview):
        _encode_bytes(0xA0, bytes(value), out)
    elif isinstance(value, uuid.UUID):
        out += b"\x98" + value.bytes
    elif isinstance(value, Described):
        out.append(0x00)
        if isinstance(value.descriptor, int):
            # Numeric descriptors are ulongs on the wire.
            code = value.descriptor
            out += b"\x53" + _U8.pack(code) if code < _SHORT else b"\x80" + _U64.pack(code)
        else:
            encode_value(value.descriptor, out)
        encode_value(value.value, out)
    elif isinstance(value, Mapping):
        body = bytearray()
        for key, item in value.items():
            encode_value(key, body)
            encode_value(item, body)
        _encode_compound(0xC1, 2 * len(value), body, out)
    elif isinstance(value, Sequence):
        body = bytearray()
        for item in value:
            encode_value(item, body)
        _encode_compound(0xC0, len(value), body, out)
    else:
        raise TypeError(f"no AMQP encoding for {type(value).__name__}")


def encode(value: object) -> bytes:
    """The AMQP encoding of ``value``."""
    out = bytearray()
    encode_value(value, out)
    return bytes(out)
