"""AMQP values as plain JSON and back: how exports show value and sequence bodies and replays resend them.

JSON's own types stand for themselves; every other value is a one-key object whose key starts with ``$``:

    {"$binary": "<base64>"}   {"$uuid": "…"}   {"$decimal": "…"}   {"$double": "nan" | "inf" | "-inf"}
    {"$map": [[key, value], …]}   a map whose keys are not all text, or one of which starts with "$"
    {"$unknown": "<repr>"}    a value of a type this module does not know: shown, never resent

The SDK decodes every AMQP string, symbol and binary to bytes, every integer type to int and timestamps to
int, so that is all there is to keep: bytes that are valid UTF-8 are taken for text (a string is what other
clients put in a value body: a JMS TextMessage is one), other bytes stay binary; an integer is resent as an
AMQP int, or a long (ulong) when it does not fit in 32 bits.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from dualbus.shared.errors import ConfigError

__all__ = ["from_plain", "sdk_value", "to_plain", "value_body"]

# How the SDK's encoder takes a value of an explicit AMQP type (azure/servicebus/_pyamqp/types.py, TYPE and
# VALUE; _encode.py, encode_value): a plain int would be encoded as a 32-bit int and refused beyond it, and a
# nested dict keyed "TYPE" would be read as such a typed value, so nested maps always go this way. The top
# level of a value body is encoded by type alone (encode_unknown): there a map must be a dict, and an
# integer beyond 32 bits cannot be sent at all.
_TYPE, _VALUE = "TYPE", "VALUE"
_INT32 = range(-(2**31), 2**31)
_LONG = range(-(2**63), 2**63)
_ULONG = range(2**64)


def to_plain(value: object) -> Any:  # noqa: ANN401 - any JSON value
    """A decoded AMQP value as JSON (see the module docstring); never fails."""
    if value is None or isinstance(value, bool | str):
        return value
    for kinds, write in _WRITERS:
        if isinstance(value, kinds):
            return write(value)
    return {"$unknown": repr(value)}


def _float_to_plain(value: float) -> Any:  # noqa: ANN401 - a number or a tagged object
    return float(value) if math.isfinite(value) else {"$double": str(value)}


def _bytes_to_plain(raw: bytes) -> Any:  # noqa: ANN401 - text or a tagged object
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"$binary": base64.b64encode(raw).decode("ascii")}


def _map_to_plain(value: dict[Any, Any]) -> dict[str, Any]:
    pairs = [(to_plain(key), to_plain(item)) for key, item in value.items()]
    if all(isinstance(key, str) and not key.startswith("$") for key, _ in pairs):
        return dict(pairs)
    return {"$map": [[key, item] for key, item in pairs]}


_WRITERS: tuple[tuple[type | tuple[type, ...], Callable[[Any], Any]], ...] = (
    (int, int),
    (float, _float_to_plain),
    ((bytes, bytearray, memoryview), lambda value: _bytes_to_plain(bytes(value))),
    ((list, tuple), lambda value: [to_plain(item) for item in value]),
    (dict, _map_to_plain),
    (uuid.UUID, lambda value: {"$uuid": str(value)}),
    (Decimal, lambda value: {"$decimal": str(value)}),
)


def value_body(plain: object) -> Any:  # noqa: ANN401 - a value for the SDK's encoder
    """The ``value_body`` to hand the SDK for a plain JSON value; ConfigError if it cannot be sent."""
    if isinstance(plain, int) and not isinstance(plain, bool) and plain not in _INT32:
        raise ConfigError(f"the SDK cannot send {plain} as a whole value body: it fits no 32-bit int")
    sent = from_plain(plain)
    if isinstance(sent, dict) and sent.get(_TYPE) == "MAP":
        try:
            sent = dict(sent[_VALUE])
        except TypeError as exc:  # a key that is itself a list, a map or a wide integer
            raise ConfigError(f"the SDK cannot send this map as a whole value body: {exc}") from exc
    if sent is not None and not sent:
        # The SDK (azure-servicebus 7.15, _pyamqp/_encode.py encode_payload) leaves out a falsy value body,
        # which would arrive as no body at all.
        raise ConfigError(
            f"the SDK cannot send the value body {plain!r}: it drops a zero, false or empty value"
        )
    return sent


def from_plain(plain: object) -> Any:  # noqa: ANN401 - a value for the SDK's encoder
    """The value to hand the SDK for a plain JSON value inside a list or a map; ConfigError if it cannot
    be sent."""
    if isinstance(plain, int) and not isinstance(plain, bool):
        return sdk_value(plain)
    if plain is None or isinstance(plain, bool | str | float):
        return plain
    if isinstance(plain, list):
        return [from_plain(item) for item in plain]
    if isinstance(plain, dict):
        return _tagged(plain) if _is_tagged(plain) else _sdk_map(list(plain.items()))
    raise ConfigError(f"{type(plain).__name__} is not a JSON value")


def _is_tagged(plain: dict[Any, Any]) -> bool:
    return any(isinstance(key, str) and key.startswith("$") for key in plain)


def _tagged(plain: dict[Any, Any]) -> Any:  # noqa: ANN401 - a value for the SDK's encoder
    (tag, text), *rest = plain.items()
    if rest:
        raise ConfigError(f"a tagged value has one key, not {sorted(plain)}")
    if tag == "$map" and isinstance(text, list):
        return _sdk_map([_pair(item) for item in text])
    if not isinstance(text, str) or tag not in _READERS:
        raise ConfigError(f"{tag} {text!r} cannot be sent: it is no value this tool can encode")
    try:
        return _READERS[tag](text)
    except (ValueError, InvalidOperation) as exc:
        raise ConfigError(f"{tag} {text!r} is malformed: {exc}") from exc


_READERS: dict[str, Callable[[str], Any]] = {
    "$binary": lambda text: base64.b64decode(text, validate=True),
    "$uuid": uuid.UUID,
    "$decimal": Decimal,
    "$double": float,
}


def _pair(item: object) -> tuple[Any, Any]:
    if not isinstance(item, list) or len(item) != 2:  # noqa: PLR2004 - a key and a value
        raise ConfigError(f"a $map entry is [key, value], not {item!r}")
    return item[0], item[1]


def _sdk_map(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    return {_TYPE: "MAP", _VALUE: [(from_plain(key), from_plain(item)) for key, item in pairs]}


def sdk_value(value: object) -> Any:  # noqa: ANN401 - a value for the SDK's encoder
    """An application property or body value as the SDK can encode it: wide integers typed long."""
    if not isinstance(value, int) or isinstance(value, bool) or value in _INT32:
        return value
    if value in _LONG:
        return {_TYPE: "LONG", _VALUE: value}
    if value in _ULONG:
        return {_TYPE: "ULONG", _VALUE: value}
    raise ConfigError(f"{value} does not fit in any AMQP integer type")
