"""Which connections the emulator's loop must write, and when each one's transport next needs a tick.

A pass used to ask every connection's transport for output and tick every one. A consumer keeps two
connections for each session it works or looks for (the SDK opens one per receiver), so hundreds stay open,
most of them idle, and that sweep became most of the loop's work. Instead a pass writes only the connections
that may have output: those it read from or found writable, those proton announced (a TRANSPORT event
follows every change of a connection's endpoints, deliveries included), and those whose tick left a frame
to send. A transport is ticked when its last deadline is due, and after any bytes read from or written to
it, which is what moves the deadline (proton's idle timeouts count from the last bytes read and written,
and it notices them only when ticked).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Activity"]

C = TypeVar("C")


class Activity(Generic[C]):
    """The connections with possible output and the transports' tick deadlines (seconds since the epoch)."""

    def __init__(self) -> None:
        self._output: set[C] = set()
        self._touched: set[C] = set()
        self._tick_at: dict[C, float | None] = {}

    def joined(self, client: C) -> None:
        """A new connection: written and ticked in the coming pass."""
        self._tick_at[client] = None
        self.active(client)

    def left(self, client: C) -> None:
        """A connection gone: nothing more to write or tick."""
        self._output.discard(client)
        self._touched.discard(client)
        self._tick_at.pop(client, None)

    def active(self, client: C) -> None:
        """Bytes were read from, or can be written to, the connection: write it, and tick it again."""
        if client in self._tick_at:
            self._output.add(client)
            self._touched.add(client)

    def written(self, client: C) -> None:
        """Bytes went out on the connection: tick it again (its keep-alive deadline moved)."""
        if client in self._tick_at:
            self._touched.add(client)

    def announced(self, client: C) -> None:
        """Proton said the connection's transport has work (a TRANSPORT event): write it."""
        if client in self._tick_at:
            self._output.add(client)

    @property
    def has_output(self) -> bool:
        """Whether some connection is still to be written."""
        return bool(self._output)

    def take_output(self) -> list[C]:
        """The connections to write now; the set starts over (writing may announce more)."""
        taken = list(self._output)
        self._output.clear()
        return taken

    def tick(
        self, now: float, tick: Callable[[C, float], float], pending: Callable[[C], int]
    ) -> float | None:
        """Tick the transports touched since their last tick or due by ``now``; the earliest next deadline.

        ``tick`` is proton's ``Transport.tick``: it answers the next deadline, 0 for none. A ticked transport
        with output (``pending``, proton's ``Transport.pending``: a keep-alive) is written in this pass.
        """
        due = {client for client, at in self._tick_at.items() if at is not None and at <= now}
        for client in due | self._touched:
            deadline = tick(client, now)
            self._tick_at[client] = deadline or None
            if pending(client) != 0:  # a frame to send, or the end of the connection to see to
                self._output.add(client)
        self._touched.clear()
        return min((at for at in self._tick_at.values() if at is not None), default=None)
