"""The message format of each delivery, read from a client's frames however the stream is split."""

from __future__ import annotations

import struct

import pytest

from dualbus.sandbox.servicebus.codec import Described, UInt, encode
from dualbus.sandbox.servicebus.errors import AmqpDecodeError
from dualbus.sandbox.servicebus.frames import BATCH_FORMAT, ClientFrames
from dualbus.sandbox.servicebus.message import parse_message, split_batch, stamp_message_id


def _frame(channel: int, performative: Described, payload: bytes = b"") -> bytes:
    body = encode(performative) + payload
    return struct.pack(">IBBH", 8 + len(body), 2, 0, channel) + body


def _attach(name: str, handle: int, *, client_sends: bool) -> Described:
    return Described(0x12, [name, UInt(handle), not client_sends])


def _transfer(handle: int, message_format: int | None, *, more: bool = False) -> Described:
    return Described(0x14, [UInt(handle), UInt(0), b"t", message_format, False, more])


def _stream() -> bytes:
    return (
        b"AMQP\x03\x01\x00\x00"  # SASL header; its frames are passed over
        + struct.pack(">IBBH", 12, 2, 1, 0)
        + b"\x00\x00\x00\x00"
        + b"AMQP\x00\x01\x00\x00"
        + _frame(0, _attach("replies", 0, client_sends=False))
        + _frame(0, _attach("sender-1", 1, client_sends=True))
        + _frame(0, _transfer(1, 0), b"\x00\x53\x77\xa1\x01a")
        + _frame(0, _transfer(1, BATCH_FORMAT, more=True), b"x" * 3000)  # first frame of a long batch
        + _frame(0, _transfer(1, None), b"y" * 10)  # its last frame: no format of its own
        + struct.pack(">IBBH", 8, 2, 0, 0)  # an empty (heartbeat) frame
        + _frame(0, _transfer(1, None), b"z")  # format left out: 0
    )


@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
def test_formats_follow_deliveries_in_order_however_the_bytes_arrive(chunk):
    """Each delivery's format, in order, whatever the reads' sizes; continuation frames add none."""
    formats = ClientFrames()
    data = _stream()
    for start in range(0, len(data), chunk):
        formats.feed(data[start : start + chunk])
    assert [formats.next_format("sender-1") for _ in range(4)] == [0, BATCH_FORMAT, 0, None]
    assert formats.next_format("replies") is None


def test_declared_batch_with_an_empty_header_is_split():
    """A batch envelope may start with an empty header (the JavaScript SDK's does): its format decides."""
    inner = b"\x00\x53\x73\xc0\x03\x01\xa1\x00" + b"\x00\x53\x77\xa1\x01m"
    envelope = b"\x00\x53\x70\x45" + b"\x00\x53\x75\xa0" + bytes([len(inner)]) + inner
    assert split_batch(envelope) is None  # by shape alone a header means one message
    assert split_batch(envelope, BATCH_FORMAT) == [inner]
    assert split_batch(envelope, 0) is None


def test_declared_batch_that_holds_no_message_is_refused():
    """A transfer marked as a batch whose data is not an encoded message is refused, not stored."""
    with pytest.raises(AmqpDecodeError):
        split_batch(b"\x00\x53\x75\xa0\x02hi", BATCH_FORMAT)


def test_message_without_id_is_stamped_and_keeps_its_other_properties():
    """A missing message id is filled in; the other properties and the user properties stay as sent."""
    props = encode(Described(0x73, [None, None, None, "subject"]))
    app = b"\x00\x53\x74\xc1\x07\x02\xa1\x01k\xa1\x01v"
    env = stamp_message_id(parse_message(props + app + b"\x00\x53\x77\xa1\x01b"))
    assert env.message_id is not None
    assert len(env.message_id) == 32
    assert env.system_properties()["Label"] == "subject"
    assert env.application_properties() == {"k": "v"}
    assert parse_message(env.bare).message_id == env.message_id
    bare = stamp_message_id(parse_message(b"\x00\x53\x77\xa1\x01b"))
    assert parse_message(bare.bare).message_id == bare.message_id
