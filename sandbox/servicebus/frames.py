"""The message format of each transfer a client sends, read from its frames before proton reads them.

A transfer's ``message-format`` field says how to read its payload: 0 is one AMQP message, 0x80013700 is a
Service Bus batch whose data sections each hold one encoded message. Proton (0.40) parses the field and
keeps it to itself, so the server shows every byte it reads to a TransferFormats first; the transfer
handler then takes the format of each new delivery, in order, by its link's name.

Frames: https://docs.oasis-open.org/amqp/core/v1.0/os/amqp-core-transport-v1.0-os.html#section-frame-layout
(size, data offset in 4-byte words, type 0 for AMQP, channel; then the performative). Attach is 0x12
(name, handle, role: false for the client's sender), transfer 0x14 (handle, delivery-id, delivery-tag,
message-format, settled, more), detach 0x16 (handle). Only a frame's first bytes are kept: the
performative precedes the payload, and the payload is skipped.
"""

from __future__ import annotations

import contextlib
import struct
from collections import deque

from dualbus.sandbox.servicebus.codec import decode_at, list_items_at
from dualbus.sandbox.servicebus.errors import AmqpDecodeError

__all__ = ["BATCH_FORMAT", "TransferFormats"]

BATCH_FORMAT = 0x80013700
_FRAME_HEADER = 8
_PROTOCOL_HEADER = b"AMQP"
# Enough for an attach's name, handle and role and a whole transfer performative (tags are ≤ 32 bytes).
_HEAD_LIMIT = 1024
_AMQP_FRAME = 0
_ATTACH, _TRANSFER, _DETACH = 0x12, 0x14, 0x16
_WANTED = frozenset((_ATTACH, _TRANSFER, _DETACH))
_HEADER = struct.Struct(">IBBH")


class TransferFormats:
    """One connection's incoming frames, reduced to the message format of each delivery per link."""

    def __init__(self) -> None:
        self._pending = bytearray()  # the start of a frame (or protocol header) not yet whole
        self._wanted = _FRAME_HEADER  # bytes the start needs
        self._skip = 0  # bytes of the current frame's payload still to pass over
        self._links: dict[tuple[int, int], str] = {}  # (channel, handle) -> name of a client's sender
        self._more: dict[tuple[int, int], bool] = {}  # the last transfer on the link said more follows
        self._formats: dict[str, deque[int]] = {}

    def next_format(self, link_name: str) -> int | None:
        """The message format of the link's next delivery, or None if the frames did not show one."""
        found = self._formats.get(link_name)
        return found.popleft() if found else None

    def feed(self, data: bytes) -> None:
        """Read ``data``, the next bytes the client sent (any split of the stream)."""
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
                # A frame cut short by the limit, or not ours to read, is proton's to judge.
                with contextlib.suppress(AmqpDecodeError, IndexError, ValueError, struct.error):
                    self._on_performative(data, start, channel)
        end = pos + max(frame_size, _FRAME_HEADER)
        if end > size:
            self._skip = end - size
            return size
        return end

    def _gather(self, data: bytes, pos: int, size: int) -> int:
        """Collect the start of a frame split across reads; return how far ``data`` was consumed."""
        step = min(self._wanted - len(self._pending), size - pos)
        self._pending += data[pos : pos + step]
        if len(self._pending) == self._wanted:
            self._on_head()
        return pos + step

    def _on_head(self) -> None:
        head = self._pending
        if head[:4] == _PROTOCOL_HEADER:  # AMQP or SASL protocol header: 8 bytes, never a frame size
            self._reset()
            return
        frame_size, offset, frame_type, channel = _HEADER.unpack_from(head)
        if len(head) == _FRAME_HEADER and frame_size > _FRAME_HEADER:
            # Now the frame's size is known: keep its first bytes, skip the rest.
            self._wanted = min(frame_size, _FRAME_HEADER + _HEAD_LIMIT)
            return
        if frame_type == _AMQP_FRAME and frame_size > _FRAME_HEADER:
            with contextlib.suppress(AmqpDecodeError, IndexError, ValueError, struct.error):
                self._on_performative(bytes(head), offset * 4, channel)
        self._skip = max(0, frame_size - len(head))
        self._reset()

    def _reset(self) -> None:
        self._pending = bytearray()
        self._wanted = _FRAME_HEADER

    def _on_performative(self, frame: bytes, start: int, channel: int) -> None:
        if frame[start : start + 2] != b"\x00\x53":
            return
        code = frame[start + 2]
        if code not in _WANTED:
            return
        count, pos, _ = list_items_at(frame, start + 3)
        fields: list[object] = []
        for _ in range(min(count, 6)):
            value, pos = decode_at(frame, pos)
            fields.append(value)
        fields += [None] * (6 - len(fields))
        if code == _ATTACH:
            name, handle, role = fields[0], fields[1], fields[2]
            if role is False and isinstance(handle, int):  # the client sends on this link
                self._links[(channel, handle)] = str(name)
                self._formats.setdefault(str(name), deque())
        elif code == _TRANSFER:
            self._on_transfer(channel, fields)
        elif isinstance(fields[0], int):
            self._on_detach((channel, fields[0]))

    def _on_transfer(self, channel: int, fields: list[object]) -> None:
        handle = fields[0]
        if not isinstance(handle, int):
            return
        key = (channel, handle)
        name = self._links.get(key)
        if name is None:
            return
        if not self._more.get(key):  # the first frame of a delivery carries its format
            message_format = fields[3]
            found = message_format if isinstance(message_format, int) else 0
            self._formats.setdefault(name, deque()).append(found)
        self._more[key] = bool(fields[5])

    def _on_detach(self, key: tuple[int, int]) -> None:
        name = self._links.pop(key, None)
        self._more.pop(key, None)
        # Formats of deliveries proton has yet to hand over stay until taken.
        if name is not None and not self._formats.get(name):
            self._formats.pop(name, None)
