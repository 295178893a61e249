"""Bodies of every AMQP kind: their export form, its way back, and what the SDK is handed to resend them."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest

from dualbus.ops._plain import from_plain, sdk_value, to_plain, value_body
from dualbus.ops.bodies import BodyKind, MessageBody
from dualbus.shared.errors import ConfigError


@pytest.mark.parametrize(
    ("decoded", "plain"),
    [
        (b"text \xc3\xa9", "text é"),
        (b"\xff\x00", {"$binary": "/wA="}),
        (uuid.UUID(int=5), {"$uuid": "00000000-0000-0000-0000-000000000005"}),
        (Decimal("1.50"), {"$decimal": "1.50"}),
        (float("-inf"), {"$double": "-inf"}),
        ({b"a": [1, b"b"]}, {"a": [1, "b"]}),
        ({1: "one"}, {"$map": [[1, "one"]]}),
        ({b"$ref": 1}, {"$map": [["$ref", 1]]}),
        (object, {"$unknown": "<class 'object'>"}),
    ],
)
def test_decoded_values_become_plain_json(decoded: object, plain: Any) -> None:
    """What the SDK decodes turns into JSON: UTF-8 bytes as text, everything JSON lacks as a tagged object."""
    assert to_plain(decoded) == plain
    assert orjson.loads(orjson.dumps(to_plain(decoded))) == plain


@pytest.mark.parametrize(
    ("plain", "sent"),
    [
        ([1, 2**40, 2**64 - 1], [1, {"TYPE": "LONG", "VALUE": 2**40}, {"TYPE": "ULONG", "VALUE": 2**64 - 1}]),
        ({"$binary": "/wA="}, b"\xff\x00"),
        ({"$double": "nan"}, pytest.approx(float("nan"), nan_ok=True)),
        ([{"TYPE": "LONG"}], [{"TYPE": "MAP", "VALUE": [("TYPE", "LONG")]}]),
        ([{"$map": [[1, "one"]]}], [{"TYPE": "MAP", "VALUE": [(1, "one")]}]),
    ],
)
def test_plain_values_go_to_the_sdk_with_their_amqp_types(plain: object, sent: object) -> None:
    """Wide integers are typed long, nested maps typed as maps (a key named TYPE stays a key), tags undone."""
    assert from_plain(plain) == sent


@pytest.mark.parametrize(
    "plain",
    [{"$unknown": "<x>"}, {"$binary": "not base64!"}, {"$map": [[1]]}, {"$uuid": "x", "b": 1}, 2**64],
)
def test_values_that_cannot_be_sent_are_refused(plain: object) -> None:
    """An unknown or malformed tag, or an integer wider than AMQP's, is a ConfigError rather than a crash."""
    with pytest.raises(ConfigError):
        from_plain(plain)


def test_a_whole_value_body_map_is_a_dict() -> None:
    """The SDK encodes the top of a value body by its Python type alone, so a map there goes as a dict."""
    assert value_body({"$map": [[1, "one"]]}) == {1: "one"}
    # At the top the SDK does not read TYPE/VALUE keys as a typed value: this dict goes as a plain map.
    assert value_body({"TYPE": "LONG", "VALUE": 1}) == {"TYPE": "LONG", "VALUE": 1}


@pytest.mark.parametrize("plain", [0, False, "", [], {}, 2**40])
def test_whole_value_bodies_the_sdk_cannot_send_are_refused(plain: object) -> None:
    """The SDK drops a falsy value body and refuses a wide integer there: both are refused up front."""
    with pytest.raises(ConfigError, match="cannot send"):
        value_body(plain)


def test_wide_application_property_is_typed_long() -> None:
    """A 64-bit property value is typed long for the SDK; a 32-bit one and text stay as they are."""
    assert sdk_value(2**40) == {"TYPE": "LONG", "VALUE": 2**40}
    assert (sdk_value(7), sdk_value("x"), sdk_value(True)) == (7, "x", True)


@pytest.mark.parametrize(
    ("body", "encoding", "shown"),
    [
        (MessageBody.data(b'{"a": 1}'), "json", {"a": 1}),
        (MessageBody.data(b"not JSON"), "text", "not JSON"),
        (MessageBody.data(b""), "text", ""),
        (MessageBody.data(b"\xff\xfe"), "base64", "//4="),
        (MessageBody(BodyKind.DATA, (b"a", b"b")), "base64-sections", ["YQ==", "Yg=="]),
        (MessageBody(BodyKind.VALUE, 42), "plain", 42),
        (MessageBody(BodyKind.SEQUENCE, [[1], ["x"]]), "plain", [[1], ["x"]]),
    ],
)
def test_export_fields_convert_back_to_the_body(body: MessageBody, encoding: str, shown: object) -> None:
    """Each body exports as kind, encoding and body, and reads back from a JSON line as itself."""
    fields = body.to_json()
    assert fields == {"body_kind": body.kind.value, "body_encoding": encoding, "body": shown}
    read = MessageBody.from_json(orjson.loads(orjson.dumps(fields)))
    assert read.to_json() == fields
    if encoding != "json":  # a JSON document comes back as its document, not its bytes
        assert read == body


def test_record_without_a_kind_reads_as_a_json_data_body() -> None:
    """Export lines written before bodies had kinds still replay: their body is a JSON data body."""
    assert MessageBody.from_json({"body": {"a": 1}}) == MessageBody.data(b'{"a":1}')


@pytest.mark.parametrize(
    "record",
    [
        {"body_kind": "data", "body_encoding": "base64", "body": "***"},
        {"body_kind": "data", "body_encoding": "text", "body": 5},
        {"body_kind": "data", "body_encoding": "yaml", "body": "a: 1"},
        {"body_kind": "stream", "body": []},
    ],
)
def test_malformed_export_record_is_refused(record: dict[str, Any]) -> None:
    """A body that does not match its kind and encoding is a ConfigError naming the problem."""
    with pytest.raises(ConfigError):
        MessageBody.from_json(record)


@pytest.mark.parametrize(
    ("body", "sdk"),
    [
        (MessageBody(BodyKind.DATA, (b"a", b"b")), {"data_body": [b"a", b"b"]}),
        (
            MessageBody(BodyKind.SEQUENCE, [[1, 2**40]]),
            {"sequence_body": [[1, {"TYPE": "LONG", "VALUE": 2**40}]]},
        ),
        (MessageBody(BodyKind.VALUE, None), {"value_body": None}),
    ],
)
def test_sdk_body_keeps_the_kind(body: MessageBody, sdk: dict[str, Any]) -> None:
    """The keyword handed to AmqpAnnotatedMessage names the body's own kind."""
    assert body.sdk_body() == sdk


@pytest.mark.parametrize(
    "body",
    [MessageBody(BodyKind.DATA, ()), MessageBody(BodyKind.SEQUENCE, []), MessageBody(BodyKind.SEQUENCE, [1])],
)
def test_body_without_sections_is_refused(body: MessageBody) -> None:
    """A data or sequence body needs sections that are sections; the SDK would otherwise send no body."""
    with pytest.raises(ConfigError):
        body.sdk_body()
