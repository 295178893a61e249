"""The delivery-ids proton is shown for a client's transfers: one session-wide sequence, whatever was sent.

AMQP numbers a session's deliveries from one sequence: the first transfer of each new delivery carries the
next delivery-id (serial number arithmetic, RFC 1982); a multi-frame delivery's continuation transfers carry
the same id or none (AMQP 1.0 core, transport, 2.5.6 and 2.7.5 ``transfer``:
https://docs.oasis-open.org/amqp/core/v1.0/os/amqp-core-transport-v1.0-os.html#type-transfer). Proton
(0.40, ``pn_do_transfer``) holds a client to that: a new delivery whose id is not the next one closes the
connection with ``amqp:session:invalid-field`` "sequencing error, expected delivery-id N, got M".

The Python SDK breaks the sequence when several threads (sync) or tasks (aio) send on one session at
once, as its AutoLockRenewer does renewing several locks: ``_pyamqp`` session ``_outgoing_transfer`` reads
``next_outgoing_id`` into the transfer, writes the frame, and only then increments it, unlocked, so two
management requests leave with the same delivery-id (and the same delivery-tag: the sender link's
``delivery_count`` races the same way), and the next id may repeat or skip. Microsoft's AMQP stack
(Azure/azure-amqp, ``AmqpSession.IncomingSessionChannel.OnAcceptTransfer`` and
``SessionChannel.OnReceiveDelivery``) takes each new delivery's id as sent and checks no order (whether
Azure's service runs it is not public; the SDK's live tests renew several locks at once against Azure). The
emulator serves such requests too, by renumbering: each new delivery gets the next id of the session's
sequence (its first delivery keeps its own, as proton takes it); continuation transfers get their
delivery's. For a client that keeps the sequence (every SDK, unless it races) nothing changes.

What stays different: proton's dispositions name the renumbered ids. Only deliveries after a repeat are
concerned, and the emulator settles a management request as accepted (its outcome travels in the
response), which the SDK treats alike under either id.
"""

from __future__ import annotations

__all__ = ["DeliveryIds"]

_SERIAL = 0xFFFFFFFF  # delivery-numbers are sequence-nos: 32-bit, wrapping


class DeliveryIds:
    """One connection's sessions: the id each of the client's new deliveries gets."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}  # channel -> the id of the session's next new delivery
        self._unfinished: dict[tuple[int, int], int] = {}  # (channel, handle) -> id of a delivery going on

    def begin(self, channel: int) -> None:
        """The client began a session on ``channel`` (a channel may be reused after an end)."""
        self._next.pop(channel, None)
        for key in [key for key in self._unfinished if key[0] == channel]:
            del self._unfinished[key]

    def detach(self, channel: int, handle: int) -> None:
        """The client detached a link: a delivery it left unfinished ends with it."""
        self._unfinished.pop((channel, handle), None)

    def transfer(self, channel: int, handle: int, sent: int | None, *, more: bool) -> int | None:
        """The delivery-id proton is to see on this transfer frame; ``sent`` is the frame's own (None when
        left out), and ``more`` whether more frames of the delivery follow (false once aborted).

        None when the frame has no delivery of its own to number (a new delivery without an id is
        proton's to refuse)."""
        key = (channel, handle)
        current = self._unfinished.pop(key, None)
        if current is None:  # the first frame of a new delivery
            if sent is None:
                return None
            current = self._next.get(channel, sent)
            self._next[channel] = (current + 1) & _SERIAL
        if more:
            self._unfinished[key] = current
        return current
