"""Message bodies of every AMQP kind, as the dead-letter tools read, show, edit and resend them.

An AMQP body is data sections (bytes: all that ``ServiceBusMessage`` sends), one ``amqp-value``, or
``amqp-sequence`` sections (lists). Other clients send all three (a JMS TextMessage is a string value, a JMS
StreamMessage a sequence), so a dead letter may hold any of them, and a replay sends the same kind back.

In an export a body is three fields that convert back to the same body: ``body_kind`` (data, value,
sequence), ``body_encoding`` and ``body``. A data body is its JSON document (``json``, to edit in place),
its text (``text``) or ``base64``, or a list of base64 sections (``base64-sections``) when it has several;
values and sequences are plain JSON (``plain``, see ``dualbus.ops._plain``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from dualbus.ops._plain import from_plain, to_plain, value_body
from dualbus.shared.bus_types import AmqpBodyType, ReceivedMessage
from dualbus.shared.errors import ConfigError

__all__ = ["BodyKind", "MessageBody"]


class BodyKind(StrEnum):
    """The three kinds of AMQP message body."""

    DATA = "data"
    VALUE = "value"
    SEQUENCE = "sequence"


@dataclass(frozen=True, slots=True)
class MessageBody:
    """A body of any kind: data keeps its sections' bytes; a value or sequence keeps its plain JSON form."""

    kind: BodyKind
    content: Any  # data: tuple[bytes, ...]; value: one plain value; sequence: a list of plain lists

    @classmethod
    def data(cls, raw: bytes) -> MessageBody:
        """A body of one data section."""
        return cls(BodyKind.DATA, (raw,))

    @classmethod
    def of(cls, message: ReceivedMessage) -> MessageBody:
        """The body of a received message, whatever its kind."""
        body_type = message.body_type
        if body_type == AmqpBodyType.DATA:
            return cls(BodyKind.DATA, tuple(bytes(section) for section in message.body))
        if body_type == AmqpBodyType.SEQUENCE:
            return cls(BodyKind.SEQUENCE, [to_plain(section) for section in message.body])
        return cls(BodyKind.VALUE, to_plain(message.body))

    @property
    def joined(self) -> bytes:
        """The data sections as one byte string (empty for a value or a sequence)."""
        return b"".join(self.content) if self.kind == BodyKind.DATA else b""

    def to_json(self) -> dict[str, Any]:
        """The export fields ``body_kind``, ``body_encoding`` and ``body``."""
        if self.kind != BodyKind.DATA:
            encoding, body = "plain", self.content
        elif len(self.content) != 1:
            encoding, body = "base64-sections", [_base64(section) for section in self.content]
        else:
            encoding, body = _data_json(self.content[0])
        return {"body_kind": self.kind.value, "body_encoding": encoding, "body": body}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> MessageBody:
        """The body an export record describes (a record without a kind is a JSON data body, as
        exports were before bodies had kinds); ConfigError if it is malformed."""
        kind, encoding, body = record.get("body_kind", "data"), record.get("body_encoding"), record["body"]
        if kind in {BodyKind.VALUE, BodyKind.SEQUENCE} and encoding in {None, "plain"}:
            return cls(BodyKind(kind), body)
        if kind == BodyKind.DATA:
            return cls(BodyKind.DATA, _data_sections(encoding or "json", body))
        raise ConfigError(f"unknown body kind {kind!r} or encoding {encoding!r}")

    def sdk_body(self) -> dict[str, Any]:
        """The body keyword argument of ``AmqpAnnotatedMessage`` that sends this body again; ConfigError if
        the SDK cannot send it."""
        if self.kind == BodyKind.VALUE:
            return {"value_body": value_body(self.content)}
        if not self.content:  # the SDK would send no body section at all
            raise ConfigError(f"a {self.kind.value} body needs at least one section")
        if self.kind == BodyKind.DATA:
            return {"data_body": list(self.content)}
        if not isinstance(self.content, list):
            raise ConfigError(f"a sequence body is a list of sections, not {type(self.content).__name__}")
        return {"sequence_body": [_section(section) for section in self.content]}


def _base64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _data_json(raw: bytes) -> tuple[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "base64", _base64(raw)
    try:
        return "json", orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "text", text


def _data_sections(encoding: str, body: object) -> tuple[bytes, ...]:
    try:
        if encoding == "json":
            return (orjson.dumps(body),)
        if encoding == "text" and isinstance(body, str):
            return (body.encode("utf-8"),)
        if encoding == "base64" and isinstance(body, str):
            return (base64.b64decode(body, validate=True),)
        if encoding == "base64-sections" and isinstance(body, list):
            return tuple(base64.b64decode(section, validate=True) for section in body)
    except (orjson.JSONEncodeError, ValueError, TypeError) as exc:
        raise ConfigError(f"a {encoding} data body is malformed: {exc}") from exc
    raise ConfigError(f"a data body cannot be {encoding!r} with a {type(body).__name__} body")


def _section(section: object) -> list[Any]:
    if not isinstance(section, list):
        raise ConfigError(f"a sequence section is a list, not {type(section).__name__}")
    return [from_plain(item) for item in section]
