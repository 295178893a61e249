"""The emulator's hand-written AMQP codec against the SDK's own: each side decodes what the other encodes."""

from __future__ import annotations

import uuid

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus._pyamqp._decode import decode_payload
from azure.servicebus._pyamqp._encode import encode_payload
from azure.servicebus._transport._pyamqp_transport import PyamqpTransport
from hypothesis import given, settings
from hypothesis import strategies as st

from dualbus.sandbox.servicebus.codec import Symbol, Timestamp, decode, encode, skip_at
from dualbus.sandbox.servicebus.message import parse_message
from dualbus.sandbox.servicebus.outgoing import compose, with_dead_letter

pytestmark = pytest.mark.contract

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=300)
    | st.binary(max_size=300)
    | st.uuids()
    | st.builds(Timestamp, st.integers(min_value=0, max_value=2**62))
    | st.builds(Symbol, st.text(alphabet="abcdefghijklmnopqrstuvwxyz:-", max_size=40))
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=20), inner, max_size=8),
    max_leaves=40,
)


@given(_values)
@settings(max_examples=200, deadline=None)
def test_codec_round_trips_every_value(value):
    """Any value encoded decodes back equal with its type, and skipping it lands exactly at its end."""
    encoded = encode(value)
    decoded = decode(encoded)
    assert decoded == value
    assert skip_at(encoded, 0) == len(encoded)
    assert type(decoded) is type(value) or isinstance(value, bool | list | dict)


def _sdk_bytes(message: ServiceBusMessage) -> bytes:
    out = bytearray()
    encode_payload(out, PyamqpTransport.to_outgoing_amqp_message(message._raw_amqp_message))
    return bytes(out)


@given(
    body=st.binary(max_size=2000),
    props=st.dictionaries(
        st.text(min_size=1, max_size=20), st.integers(-(2**31), 2**31 - 1) | st.text(max_size=50), max_size=6
    ),
    session=st.none() | st.text(min_size=1, max_size=30),
)
@settings(max_examples=100, deadline=None)
def test_sdk_message_survives_the_broker_unchanged(body, props, session):
    """An SDK-encoded message, parsed and re-composed by the broker, decodes in the SDK with its content."""
    sent = ServiceBusMessage(
        body, application_properties=props, session_id=session, message_id=str(uuid.uuid4())
    )
    env = parse_message(_sdk_bytes(sent))
    assert env.session_id == session
    assert env.application_properties() == props
    received = decode_payload(
        memoryview(compose(env, sequence_number=42, enqueued_ms=1_000, delivery_count=3))
    )
    assert b"".join(received.data) == body
    assert received.header.delivery_count == 3
    assert received.message_annotations[b"x-opt-sequence-number"] == 42
    decoded_props = {
        k.decode(): (v.decode() if isinstance(v, bytes) else v)
        for k, v in (received.application_properties or {}).items()
    }
    assert decoded_props == props


def test_dead_letter_copy_keeps_body_and_adds_reason():
    """A dead-lettered copy keeps body and properties and carries the reason as application properties."""
    env = parse_message(_sdk_bytes(ServiceBusMessage(b"body", application_properties={"k": 1})))
    dead = decode_payload(
        memoryview(
            compose(with_dead_letter(env, "R", "why"), sequence_number=1, enqueued_ms=0, delivery_count=0)
        )
    )
    assert b"".join(dead.data) == b"body"
    assert dead.application_properties == {
        b"k": 1,
        b"DeadLetterReason": b"R",
        b"DeadLetterErrorDescription": b"why",
    }
