"""Decoding sent messages: SDK batches split and parsed in one scan, and malformed input refused cleanly."""

from __future__ import annotations

import struct
import uuid
from dataclasses import FrozenInstanceError, fields

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus._common.message import ServiceBusMessageBatch
from azure.servicebus._pyamqp._encode import encode_payload
from azure.servicebus._pyamqp.message import BatchMessage
from hypothesis import given, settings
from hypothesis import strategies as st

from dualbus.sandbox.servicebus.codec import decode
from dualbus.sandbox.servicebus.errors import AmqpDecodeError
from dualbus.sandbox.servicebus.message import SentMessage, parse_message, split_batch


def _sdk_batch(messages: list[ServiceBusMessage]) -> bytes:
    """The transfer payload the SDK sends for a ServiceBusMessageBatch holding ``messages``."""
    batch = ServiceBusMessageBatch(max_size_in_bytes=1024 * 1024)
    for message in messages:
        batch.add_message(message)
    out = bytearray()
    encode_payload(out, BatchMessage(*batch._message))
    return bytes(out)


def _varied_messages(count: int) -> list[ServiceBusMessage]:
    return [
        ServiceBusMessage(
            b"x" * (i * 37),
            message_id=str(uuid.uuid4()) if i % 2 else None,
            session_id=f"session-{i % 3}" if i % 3 else None,
            application_properties={"area": "customer", "n": i} if i % 4 else None,
            subject="change" if i % 5 else None,
            time_to_live=None,
        )
        for i in range(count)
    ]


def _single(message: ServiceBusMessage) -> bytes:
    """The payload of a batch of one, unwrapped: the message exactly as the SDK encodes it."""
    parts = split_batch(_sdk_batch([message]))
    assert parts is not None
    return bytes(parts[0])


def _receive(payload: bytes) -> list[SentMessage]:
    """What the emulator does with a sent transfer: split it if it is a batch, parse every message."""
    parts = split_batch(payload)
    return [parse_message(raw) for raw in (parts if parts is not None else [payload])]


def _nested_lists(depth: int) -> bytes:
    """Lists in lists, deeper than Python can recurse: valid framing, undecodable here."""
    value = b"\x45"
    for _ in range(depth):
        value = b"\xd0" + struct.pack(">II", len(value) + 4, 1) + value
    return value


def test_batch_messages_parse_as_they_would_alone():
    """Each message of a batch gives the same SentMessage as its bytes parsed on their own."""
    sent = _varied_messages(40)
    parts = split_batch(_sdk_batch(sent))
    assert parts is not None
    assert len(parts) == len(sent)
    for message, raw in zip(sent, parts, strict=True):
        env = parse_message(raw)
        alone = parse_message(bytes(raw))
        assert env == alone
        assert type(env.bare) is bytes
        assert env.message_id == message.message_id
        assert env.session_id == message.session_id
        assert env.application_properties() == (message.application_properties or {})
        assert env.properties[3] == message.subject


def test_parsed_envelope_is_an_ordinary_frozen_envelope():
    """A SentMessage from parse_message equals, hashes and freezes like one built by its constructor."""
    env = parse_message(_single(ServiceBusMessage(b"body", message_id="m-1", session_id="s")))
    rebuilt = SentMessage(**{f.name: getattr(env, f.name) for f in fields(SentMessage) if f.init})
    assert env == rebuilt
    assert hash(env) == hash(rebuilt)
    assert repr(env) == repr(rebuilt)
    with pytest.raises(FrozenInstanceError):
        env.bare = b""  # type: ignore[misc]


def test_an_empty_list_section_is_not_shared_between_messages():
    """A header sent as an empty list is padded per message, never by changing a shared decoded value."""
    message = b"\x00\x53\x70\x45" + b"\x00\x53\x75\xa0\x01x"
    assert parse_message(message).durable is False
    assert parse_message(message).priority is None
    assert decode(b"\x45") == []


def test_a_payload_without_binary_data_sections_is_not_a_batch():
    """Data sections that do not hold binaries, or binaries that are not messages, mean a single message."""
    assert split_batch(b"\x00\x53\x75\xa0\x03abc") is None
    assert split_batch(b"\x00\x53\x75\xa1\x03\x00\x53\x75") is None
    assert split_batch(b"\x00\x53\x77\xa1\x01x") is None


def test_a_batch_with_a_truncated_message_is_not_split():
    """An inner message whose sections run past its data section is not taken for a message."""
    inner = _single(ServiceBusMessage(b"body"))
    cut = inner[:-2]
    payload = b"\x00\x53\x75\xa0" + bytes((len(cut),)) + cut
    assert split_batch(payload) is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x53\x75\xa0\x00", "expected a section descriptor at offset 0"),
        (b"\x00\x53", "malformed AMQP value at offset 1"),
        (b"\x00\x53\x75\xa0\x05ab", "offset 3 runs past the end"),
        (b"\x00\x53\x75\xb0\x00\x00\x00\x09abcd", "offset 3 runs past the end"),
        (b"\x00\x53\x75\xa0\x00\x00", "malformed AMQP value at offset 6"),
        (b"\x00\x40\xa0\x00", "neither a ulong nor a symbol"),
        (b"\x00\x53\x73\x52\x05", "properties section at offset 3 is not a list"),
        (b"\x00\x53\x70\xc1\x03\x02\x41\x41", "header section at offset 3 is not a list"),
        (b"\x00\x53\x73\xc0\x05\x01\xa1\x02\xff\xfe", "malformed AMQP value at offset 3"),
        (b"\x00\x53\x73\xc0\x06\x01\x73\xff\xff\xff\xff", "malformed AMQP value at offset 3"),
        (b"\x00\x53\x73\xc0\x05\x01\xc1\x02\x01\x45", "malformed AMQP value at offset 3"),
        (b"\x00\x53\x73" + b"\x00" * 5000 + b"\x45", "malformed AMQP value at offset"),
        (b"\x00\x53\x73" + _nested_lists(2000), "malformed AMQP value at offset 3"),
        (b"\x00\x53\x73\xc0\x03\x02\x40\xff", "malformed AMQP value at offset 3"),
        (b"\x00\x53\x74\xc0\x01\x00", "application-properties section at 3 is not a map"),
        (
            b"\x00\x53\x73\xc0\x0b\x01\xf0\x00\x00\x00\x05\xff\xff\xff\xff\x40",
            "malformed AMQP value at offset 3",
        ),
    ],
    ids=lambda case: case if isinstance(case, str) else "payload",
)
def test_malformed_messages_are_refused_with_a_decode_error(payload: bytes, expected: str):
    """Broken framing, descriptors and section values raise AmqpDecodeError saying where."""
    with pytest.raises(AmqpDecodeError, match=expected):
        _receive(payload)


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_damaged_batches_are_split_and_parsed_or_refused(data: st.DataObject):
    """Cut or overwritten bytes anywhere in a batch give Envelopes or an AmqpDecodeError, nothing else."""
    payload = bytearray(_sdk_batch(_varied_messages(4)))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(payload) - 1))
        payload[at] = data.draw(st.integers(0, 255))
    payload = payload[: data.draw(st.integers(0, len(payload)))]
    try:
        for env in _receive(bytes(payload)):
            env.application_properties()
    except AmqpDecodeError:
        pass
