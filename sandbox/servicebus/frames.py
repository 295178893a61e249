"""A client's frames on their way to proton: each transfer's message format noted, delivery-ids kept in order.

A transfer's ``message-format`` field says how to read its payload: 0 is one AMQP message, 0x80013700 is a
Service Bus batch whose data sections each hold one encoded message. Proton (0.40) parses the field and
keeps it to itself, so the server hands every byte it reads to a ClientFrames first, and proton reads what
it gives back; the transfer handler then takes the format of each new delivery, in order, by its link's
name. On the way, a transfer whose delivery-id breaks the session's sequence gets the id proton expects
(``delivery_ids.py`` says why); every other byte goes through as read.

Frames: https://docs.oasis-open.org/amqp/core/v1.0/os/amqp-core-transport-v1.0-os.html#section-frame-layout
(size, data offset in 4-byte words, type 0 for AMQP, channel; then the performative). Begin is 0x11, attach
0x12 (name, handle, role: false for the client's sender), transfer 0x14 (handle, delivery-id, delivery-tag,
message-format, settled, more, rcv-settle-mode, state, resume, aborted), detach 0x16 (handle). Only a
frame's first bytes are read: the performative precedes the payload, and the payload is passed over. A
frame whose first bytes are split across reads is held back until they are whole, then handed on.
"""

from __future__ import annotations

import contextlib
import struct
from collections import deque
from dataclasses import dataclass

from dualbus.sandbox.servicebus.codec import UInt, decode_at, encode, encode_list_raw, list_items_at, skip_at
from dualbus.sandbox.servicebus.delivery_ids import DeliveryIds
from dualbus.sandbox.servicebus.errors import AmqpDecodeError

__all__ = ["BATCH_FORMAT", "ClientFrames"]

BATCH_FORMAT = 0x80013700
_FRAME_HEADER = 8
_PROTOCOL_HEADER = b"AMQP"
# Enough for an attach's name, handle and role and a whole transfer performative (tags are ≤ 32 bytes).
_HEAD_LIMIT = 1024
_AMQP_FRAME = 0
_BEGIN, _ATTACH, _TRANSFER, _DETACH = 0x11, 0x12, 0x14, 0x16
_WANTED = frozenset((_BEGIN, _ATTACH, _TRANSFER, _DETACH))
_HEADER = struct.Struct(">IBBH")
_TRANSFER_FIELDS = 6  # through ``more``; ``aborted`` (the tenth) is read only when more follows
_ABORTED = 9
# What a frame cut short by the head limit, or not ours to read, raises: proton's to judge.
_UNREADABLE = (AmqpDecodeError, IndexError, ValueError, struct.error)


@dataclass(frozen=True, slots=True)
class _Frame:
    """A frame whose first bytes are in ``buf`` from ``pos``; its performative starts at ``start``."""

    buf: bytes
    pos: int
    start: int
    channel: int


class ClientFrames:
    """One connection's incoming bytes: the message format of each delivery per link, and the bytes proton
    is to read."""

    def __init__(self) -> None:
        self._pending = bytearray()  # the start of a frame (or protocol header) not yet whole: held back
        self._wanted = _FRAME_HEADER  # bytes the start needs
        self._skip = 0  # bytes of the current frame's payload still to pass over
        self._links: dict[tuple[int, int], str] = {}  # (channel, handle) -> name of a client's sender
        self._more: dict[tuple[int, int], bool] = {}  # the last transfer on the link said more follows
        self._formats: dict[str, deque[int]] = {}
        self._ids = DeliveryIds()
        self._out: list[bytes] = []  # during ``feed``: what proton gets, of the data up to ``_mark``
        self._mark = 0  # during ``feed``: the data before it is in ``_out`` or held back

    @property
    def held(self) -> bytes:
        """Bytes read but not yet handed on (the start of a frame split across reads)."""
        return bytes(self._pending)

    def next_format(self, link_name: str) -> int | None:
        """The message format of the link's next delivery, or None if the frames did not show one."""
        found = self._formats.get(link_name)
        return found.popleft() if found else None

    def feed(self, data: bytes) -> bytes:
        """Read ``data``, the next bytes the client sent (any split of the stream); return the bytes for
        proton: ``data`` itself unless a frame start was held back, released or renumbered."""
        self._out = []
        self._mark = 0
        pos, size = 0, len(data)
        while pos < size:
            if self._skip:
                step = min(self._skip, size - pos)
                self._skip -= step
                pos += step
            elif self._pending or size - pos < _FRAME_HEADER:
                pos = self._gather(data, pos, size)
            else:
                pos = self._frame_in_place(data, pos, size)
        if not self._out and self._mark == 0:
            return data
        self._out.append(data[self._mark :])
        out, self._out = b"".join(self._out), []
        return out

    def _frame_in_place(self, data: bytes, pos: int, size: int) -> int:
        """Read the frame starting at ``pos`` straight from ``data`` (most frames arrive whole); return
        where the next one starts. Frames of no interest cost a header read and a byte compare."""
        if data[pos : pos + 4] == _PROTOCOL_HEADER:
            return self._gather(data, pos, size)
        frame_size: int
        frame_size, offset, frame_type, channel = _HEADER.unpack_from(data, pos)
        start = pos + offset * 4
        head_end = pos + min(frame_size, _FRAME_HEADER + _HEAD_LIMIT)
        if frame_type == _AMQP_FRAME and frame_size > _FRAME_HEADER:
            if head_end > size:
                return self._gather(data, pos, size)  # the performative is cut: assemble it
            if start + 2 < head_end and data[start + 2] in _WANTED:
                replaced = None
                with contextlib.suppress(*_UNREADABLE):
                    replaced = self._on_performative(_Frame(data, pos, start, channel))
                if replaced is not None:
                    if pos > self._mark:
                        self._out.append(data[self._mark : pos])
                    self._out.append(replaced[0])
                    self._mark = replaced[1]
        end = pos + max(frame_size, _FRAME_HEADER)
        if end > size:
            self._skip = end - size
            return size
        return end

    def _gather(self, data: bytes, pos: int, size: int) -> int:
        """Collect (and hold back) the start of a frame split across reads; return how far ``data`` was
        consumed."""
        if pos > self._mark:
            self._out.append(data[self._mark : pos])
        step = min(self._wanted - len(self._pending), size - pos)
        self._pending += data[pos : pos + step]
        self._mark = pos + step
        if len(self._pending) == self._wanted:
            self._on_head()
        return pos + step

    def _on_head(self) -> None:
        head = self._pending
        if head[:4] == _PROTOCOL_HEADER:  # AMQP or SASL protocol header: 8 bytes, never a frame size
            self._release(bytes(head))
            return
        frame_size, offset, frame_type, channel = _HEADER.unpack_from(head)
        if len(head) == _FRAME_HEADER and frame_size > _FRAME_HEADER:
            # Now the frame's size is known: keep its first bytes, skip the rest.
            self._wanted = min(frame_size, _FRAME_HEADER + _HEAD_LIMIT)
            return
        whole = bytes(head)
        self._skip = max(0, frame_size - len(head))
        if frame_type == _AMQP_FRAME and frame_size > _FRAME_HEADER:
            with contextlib.suppress(*_UNREADABLE):
                replaced = self._on_performative(_Frame(whole, 0, offset * 4, channel))
                if replaced is not None:
                    whole = replaced[0] + whole[replaced[1] :]
        self._release(whole)

    def _release(self, head: bytes) -> None:
        self._out.append(head)
        self._pending = bytearray()
        self._wanted = _FRAME_HEADER

    def _on_performative(self, frame: _Frame) -> tuple[bytes, int] | None:
        """Note what the frame's performative says. For a transfer to be renumbered, return the frame's new
        first bytes and where the old ones end in its buffer."""
        buf, start, channel = frame.buf, frame.start, frame.channel
        if buf[start : start + 2] != b"\x00\x53":
            return None
        code = buf[start + 2]
        if code not in _WANTED:
            return None
        count, first, _ = list_items_at(buf, start + 3)
        if code == _TRANSFER:
            return self._on_transfer(frame, count, first)
        fields: list[object] = []
        for _ in range(min(count, 3)):
            value, first = decode_at(buf, first)
            fields.append(value)
        fields += [None] * (3 - len(fields))
        if code == _BEGIN:
            self._ids.begin(channel)
        elif code == _ATTACH:
            name, handle, role = fields
            if role is False and isinstance(handle, int):  # the client sends on this link
                self._links[(channel, handle)] = str(name)
                self._formats.setdefault(str(name), deque())
        elif isinstance(fields[0], int):
            self._on_detach(channel, fields[0])
        return None

    def _on_transfer(self, frame: _Frame, count: int, first: int) -> tuple[bytes, int] | None:
        buf, channel = frame.buf, frame.channel
        starts: list[int] = []  # where each field starts
        fields: list[object] = []
        at = first
        for _ in range(min(count, _TRANSFER_FIELDS)):
            starts.append(at)
            value, at = decode_at(buf, at)
            fields.append(value)
        fields += [None] * (_TRANSFER_FIELDS - len(fields))
        handle, sent, more = fields[0], fields[1], bool(fields[5])
        if not isinstance(handle, int):
            return None
        if more and count > _ABORTED:  # an aborted delivery ends here, whatever ``more`` says
            for _ in range(_TRANSFER_FIELDS, _ABORTED):
                at = skip_at(buf, at)
            more = decode_at(buf, at)[0] is not True
        self._on_format(channel, handle, fields[3], more)
        given = sent if isinstance(sent, int) else None
        wanted = self._ids.transfer(channel, handle, given, more=more)
        if wanted is None or given is None or wanted == given:
            return None
        return _renumbered(frame, count, starts, wanted)

    def _on_format(self, channel: int, handle: int, message_format: object, more: bool) -> None:
        key = (channel, handle)
        name = self._links.get(key)
        if name is None:
            return
        if not self._more.get(key):  # the first frame of a delivery carries its format
            found = message_format if isinstance(message_format, int) else 0
            self._formats.setdefault(name, deque()).append(found)
        self._more[key] = more

    def _on_detach(self, channel: int, handle: int) -> None:
        self._ids.detach(channel, handle)
        name = self._links.pop((channel, handle), None)
        self._more.pop((channel, handle), None)
        # Formats of deliveries proton has yet to hand over stay until taken.
        if name is not None and not self._formats.get(name):
            self._formats.pop(name, None)


def _renumbered(frame: _Frame, count: int, starts: list[int], wanted: int) -> tuple[bytes, int] | None:
    """The frame's header and transfer performative with delivery-id ``wanted`` (the frame's size follows),
    and where the old ones end in its buffer; None if the performative is not all there.

    ``starts``: where the transfer's fields start, the handle's and the delivery-id's at least."""
    buf, pos, start = frame.buf, frame.pos, frame.start
    frame_size, offset, frame_type, channel = _HEADER.unpack_from(buf, pos)
    _, _, end = list_items_at(buf, start + 3)
    if len(starts) < 2 or end > min(len(buf), pos + frame_size):  # noqa: PLR2004 - handle, delivery-id
        return None
    body = buf[starts[0] : starts[1]] + encode(UInt(wanted)) + buf[skip_at(buf, starts[1]) : end]
    performative = buf[start : start + 3] + encode_list_raw(count, body)
    size = frame_size + len(performative) - (end - start)
    header = _HEADER.pack(size, offset, frame_type, channel)
    return header + buf[pos + _FRAME_HEADER : start] + performative, end
