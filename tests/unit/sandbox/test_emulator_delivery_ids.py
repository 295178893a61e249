"""Delivery-ids out of the session's sequence (the Python SDK's concurrent sends) reach proton renumbered."""

from __future__ import annotations

import struct

import pytest
from proton import Collector, Connection, Event, Transport

from dualbus.sandbox.servicebus.codec import Described, Symbol, UInt, decode_at, encode, list_items_at
from dualbus.sandbox.servicebus.delivery_ids import DeliveryIds
from dualbus.sandbox.servicebus.frames import ClientFrames

_HEADER = struct.Struct(">IBBH")
_CHUNKS = [1, 7, 64, 100_000]


def _frame(channel: int, performative: Described, payload: bytes = b"") -> bytes:
    body = encode(performative) + payload
    return _HEADER.pack(8 + len(body), 2, 0, channel) + body


def _begin() -> Described:
    return Described(0x11, [None, UInt(0), UInt(1000), UInt(1000)])


def _attach(name: str, handle: int) -> Described:
    # name, handle, role (false: the client sends), snd- and rcv-settle-mode, source, target, unsettled,
    # incomplete-unsettled, initial-delivery-count
    target = Described(0x29, ["queue"])
    return Described(0x12, [name, UInt(handle), False, None, None, None, target, None, None, UInt(0)])


def _transfer(handle: int, delivery_id: int | None, tag: bytes, *, more: bool = False) -> Described:
    number = None if delivery_id is None else UInt(delivery_id)
    return Described(0x14, [UInt(handle), number, tag, UInt(0), False, more])


def _ids_seen(stream: bytes) -> list[tuple[int, int | None]]:
    """(channel, delivery-id) of each transfer in a stream of AMQP frames, checking every frame's size."""
    seen: list[tuple[int, int | None]] = []
    pos = 0
    while pos < len(stream):
        if stream[pos : pos + 4] == b"AMQP":
            pos += 8
            continue
        size, offset, _, channel = _HEADER.unpack_from(stream, pos)
        start = pos + offset * 4
        if size > 8 and stream[start + 2] == 0x14:
            _, first, end = list_items_at(stream, start + 3)
            assert end <= pos + size
            _, at = decode_at(stream, first)
            seen.append((channel, decode_at(stream, at)[0]))
        pos += size
    assert pos == len(stream)
    return seen


def _through(frames: ClientFrames, stream: bytes, chunk: int) -> bytes:
    return b"".join(frames.feed(stream[at : at + chunk]) for at in range(0, len(stream), chunk))


def _session(channel: int, transfers: list[Described]) -> bytes:
    return (
        _frame(channel, _begin())
        + _frame(channel, _attach(f"request-{channel}", 1))
        + b"".join(_frame(channel, t, b"\x00\x53\x77\xa1\x02hi") for t in transfers)
    )


@pytest.mark.parametrize("chunk", _CHUNKS)
def test_a_kept_sequence_goes_through_byte_for_byte(chunk):
    """A client keeping the sequence (every SDK unless it races) reaches proton exactly as it sent."""
    stream = b"AMQP\x00\x01\x00\x00" + _session(0, [_transfer(1, n, bytes([n])) for n in range(5)])
    assert _through(ClientFrames(), stream, chunk) == stream


def test_a_whole_read_is_handed_on_without_a_copy():
    stream = _session(0, [_transfer(1, n, bytes([n])) for n in range(3)])
    assert ClientFrames().feed(stream) is stream


@pytest.mark.parametrize("chunk", _CHUNKS)
def test_repeated_and_skipped_ids_are_renumbered_in_order(chunk):
    """The SDK's racing renewals: two requests with id 1, then the next with 3 (or 2 again)."""
    sent = [1, 1, 3, 2, 2]
    stream = _session(3, [_transfer(1, n, b"\x00\x00\x00\x01") for n in sent])
    out = _through(ClientFrames(), stream, chunk)
    assert _ids_seen(out) == [(3, n) for n in range(1, 6)]
    # The payloads are untouched.
    assert out.count(b"\x00\x53\x77\xa1\x02hi") == len(sent)


@pytest.mark.parametrize("chunk", _CHUNKS)
def test_a_longer_encoding_grows_the_frame(chunk):
    """Id 256 takes a four-byte uint where the client wrote a one-byte one: the frame's size follows."""
    stream = _session(0, [_transfer(1, 255, b"a"), _transfer(1, 0, b"b"), _transfer(1, 0, b"c")])
    assert _ids_seen(_through(ClientFrames(), stream, chunk)) == [(0, 255), (0, 256), (0, 257)]


@pytest.mark.parametrize("chunk", _CHUNKS)
def test_continuation_frames_keep_their_delivery_id(chunk):
    """A multi-frame delivery's later frames carry its id or none; another link's delivery in between
    takes the next id; the sessions on two channels number apart."""
    stream = (
        _session(0, [_transfer(1, 7, b"a", more=True)])
        + _frame(0, _attach("other", 2))
        + _frame(0, _transfer(2, 7, b"b"))  # a new delivery on another link, with a repeated id
        + _frame(0, _transfer(1, 7, b"a", more=True))  # the first delivery goes on
        + _frame(0, _transfer(1, None, b"a"))  # and ends, its id left out
        + _session(1, [_transfer(1, 0, b"x"), _transfer(1, 0, b"y")])
        + _frame(0, _transfer(1, 8, b"c"))
    )
    seen = _ids_seen(_through(ClientFrames(), stream, chunk))
    assert seen == [(0, 7), (0, 8), (0, 7), (0, None), (1, 0), (1, 1), (0, 9)]


def test_aborted_delivery_ends_and_a_new_begin_restarts_the_sequence():
    ids = DeliveryIds()
    assert ids.transfer(0, 1, 5, more=True) == 5
    assert ids.transfer(0, 1, 5, more=False) == 5  # its last frame (or an aborted one)
    assert ids.transfer(0, 1, 5, more=False) == 6  # a new delivery repeating the id
    ids.detach(0, 1)
    ids.begin(0)
    assert ids.transfer(0, 1, 40, more=False) == 40  # a new session's first delivery keeps its own


def test_aborted_transfer_ends_its_delivery_in_the_stream():
    aborted = Described(0x14, [UInt(1), UInt(4), b"a", UInt(0), False, True, None, None, False, True])
    stream = _session(0, [_transfer(1, 4, b"a", more=True)]) + _frame(0, aborted)
    stream += _frame(0, _transfer(1, 4, b"b"))
    assert _ids_seen(_through(ClientFrames(), stream, 100_000)) == [(0, 4), (0, 4), (0, 5)]


def _proton_error(frames: ClientFrames | None, opening: bytes, transfers: bytes) -> str | None:
    """Hand a client's stream (through ``frames``, or as sent) to a proton server transport that opens
    what the client opens, the way the emulator's loop does; the error proton closes with, if any."""
    collector = Collector()
    connection = Connection()
    connection.collect(collector)
    transport = Transport(Transport.SERVER)
    transport.bind(connection)
    for data in (opening, transfers):
        transport.push(frames.feed(data) if frames is not None else data)
        while (event := collector.peek()) is not None:
            if event.type == Event.CONNECTION_REMOTE_OPEN:
                connection.open()
            elif event.type == Event.SESSION_REMOTE_OPEN:
                event.session.open()
            elif event.type == Event.LINK_REMOTE_OPEN:
                event.link.open()
                event.link.flow(100)
            collector.pop()
        transport.pop(max(0, transport.pending()))  # proton answers: the session's window opens
    condition = transport.condition or connection.condition
    return None if condition is None else f"{condition.name}: {condition.description}"


def test_proton_takes_the_renumbered_stream_and_refuses_the_raw_one():
    """The point of it all, against proton's engine itself."""
    opening = b"AMQP\x00\x01\x00\x00" + _frame(0, Described(0x10, ["client"])) + _session(0, [])
    transfers = b"".join(_frame(0, _transfer(1, n, b"t"), b"\x00\x53\x77\x40") for n in (0, 1, 1, 3))
    raw = _proton_error(None, opening, transfers)
    assert raw is not None
    assert "sequencing error" in raw
    assert _proton_error(ClientFrames(), opening, transfers) is None


def test_symbols_are_not_mistaken_for_transfers():
    """A performative the reader does not want (here a close with a condition) goes through unread."""
    close = Described(0x18, [Described(0x1D, [Symbol("amqp:internal-error"), "x"])])
    stream = _frame(0, close)
    assert ClientFrames().feed(stream) is stream
