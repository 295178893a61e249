"""What a worker holds while it works a receiver's batches: a session (or its messages' locks), until lost.

Once a settlement, a lock renewal or a save of the session's state says that the lock is lost, or the lock's
time has passed, the hold is lost: no further message of the batch is applied (those in progress are
cancelled, the rest are left as they are) and the worker lets the receiver go. Service Bus gives them to the
session's next holder, in order. Working on instead would apply changes that the next holder may already be
applying after them; that is how an old update re-created a row its delete had removed.

The hold settles messages too, one at a time (the SDK's link does not take concurrent settlements), and it is
what the sink sees of the session it works in (``current_hold``: the session's tombstones). The tombstones
are read in the background as the session is taken, while its first messages are received; the worker waits
for them before it applies anything (``tombstones_read``).

A dead-letter and a session-state save take turns (``state_turn``). The SDK's AMQP session hands every
incoming disposition to every link on it, whatever its role: the broker's echo of a dead-letter (``rejected``,
no error) for its delivery N is taken by the management link for the SDK's own request N, if one is in
flight; the SDK then drops that request (``IndexError`` in its ``_on_send_complete``) and waits for its answer
forever. The SDK numbers its deliveries on a session from 0, and so does the emulator (Azure does not
publish its numbering), so the two meet often. The echoes of completes and abandons (``accepted``,
``modified``) do no harm there, so those run beside saves: one save per applied change must not wait for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from dualbus.consumers._tombstones import Tombstones
from dualbus.shared.bus import LockLostError
from dualbus.shared.bus_calls import abandon, complete, dead_letter
from dualbus.shared.bus_types import AsyncReceiver, ReceivedMessage
from dualbus.shared.errors import DualbusError, TransientError

__all__ = ["SessionHold", "current_hold"]

_log = logging.getLogger("dualbus.consumer")
# The processor hands the sink a change, not the message it came in: the hold travels with the task instead.
_current: ContextVar[SessionHold | None] = ContextVar("dualbus_session_hold", default=None)


def current_hold() -> SessionHold | None:
    """The hold of the batch the calling task works on; None outside one."""
    return _current.get()


class SessionHold:
    """One receiver's lock on its session (or its messages), its tombstones, and its settlement calls."""

    def __init__(self, receiver: AsyncReceiver, *, sessionful: bool) -> None:
        self._receiver = receiver
        self._sessionful = sessionful
        self._settling = asyncio.Lock()
        # Dead-letters and session-state saves, one at a time (see above); saves take it through Tombstones.
        self.state_turn = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.tombstones: Tombstones | None = None
        self._reading: asyncio.Task[Tombstones] | None = None
        self.lost = False
        self._let_go = False

    def read_tombstones(self, reading: Coroutine[Any, Any, Tombstones]) -> None:
        """Read the session's tombstones in the background: the worker receives the session's first
        messages meanwhile, instead of after a round trip of its own (``tombstones_read`` before applying)."""
        self._reading = asyncio.ensure_future(reading)
        # A read that fails as it is cancelled ends with its error (asyncio.wait_for's way): taken here, so
        # that one nobody waits for any more is not reported as never retrieved.
        self._reading.add_done_callback(_retrieved)

    @property
    def sessionful(self) -> bool:
        """Whether the hold is a session's (whose changes are judged with its tombstones)."""
        return self._sessionful

    @property
    def reading(self) -> bool:
        """Whether the tombstones are still to be waited for."""
        return self._reading is not None

    async def tombstones_read(self) -> None:
        """Wait for the tombstones being read, if any (BusError when they could not be); due before the
        first change is applied, since a change applied without them would pass the stale guard unseen."""
        reading, self._reading = self._reading, None
        if reading is not None:
            self.tombstones = await reading

    def let_go(self) -> None:
        """The worker lets the session go (its receiver closes next): a read of its tombstones still under
        way is cancelled, a failed one's error taken, and a renewal failing from now on is no loss."""
        self._let_go = True
        reading, self._reading = self._reading, None
        if reading is None:
            return
        reading.cancel()  # nothing is applied with them now; the next holder reads them again

    def lose(self, why: str) -> None:
        """The lock is gone: stop every message of the batch where it is."""
        if self.lost:
            return
        self.lost = True
        _log.warning("lock lost (%s): the unsettled messages are left for the next holder", why)
        for task in list(self._tasks):
            task.cancel()

    def expired(self, message: ReceivedMessage | None) -> bool:
        """Whether the lock's time has passed: renewal stopped or failed without a word (a session's, or
        without sessions the message's; None: no message, only a session's lock is looked at)."""
        if self._sessionful:
            until = self._receiver.session.locked_until_utc
        elif message is not None:
            until = message.locked_until_utc
        else:
            return False
        return until is not None and until <= datetime.now(UTC)

    def still_held(self) -> None:
        """LockLostError, the hold lost, when a session's lock is gone or its time has passed: checked
        before each attempt at a message and after each wait for the target, not only before a message
        is taken up. (A hold without a session has a lock per message, each its own.)

        The SDK's renewer stops without a word (its maximum renewal duration, a receiver that stopped), and
        a change that waited out a Retry-After or an open circuit past the lock's time was written late,
        over what the session's next holder had applied meanwhile (a create re-made after its delete).
        """
        if not self._sessionful:
            return
        if self.lost:
            raise LockLostError("the lock was lost while the message was in hand")
        if self.expired(None):
            self.lose("its time passed while a message was in hand")
            raise LockLostError("the lock's time passed while the message was in hand")

    async def renewal_failed(self, _renewable: object, error: Exception | None) -> None:
        """``AutoLockRenewer``'s callback: a renewal failed, so the lock will not outlive its time.

        Closing the receiver of a session let go fails a renewal in flight: the SDK's management link
        detaches under it (a session receiver closed mid-renewal in about one close in five against 5 s
        locks). The worker is done with that session, so no lock is lost that it still needed.
        """
        if self._let_go:
            _log.debug("a renewal ended with the receiver of a session let go: %s", error)
            return
        self.lose(f"renewing it failed: {error}")

    def spawn(self, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``job`` (a record queue's work) as a task of this hold: it sees the hold (``current_hold``)
        and is cancelled when the hold is lost."""
        token = _current.set(self)
        try:
            task = asyncio.create_task(job)
        finally:
            _current.reset(token)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _save_tombstones(self) -> None:
        """Save the tombstones the message's changes left, before it is settled (a settled message never
        comes back, so a tombstone not saved by then could be lost with this consumer)."""
        if self.tombstones is None or not self.tombstones.unsaved:
            return
        try:
            await self.tombstones.flush()
        except DualbusError as exc:
            # Settling now could lose the tombstone; whoever holds the session next applies the changes
            # again and saves them then.
            self.lose(f"saving the session's tombstones failed: {exc}")
            raise LockLostError(f"the session's tombstones could not be saved: {exc}") from exc

    async def complete_message(self, message: ReceivedMessage) -> None:
        """Complete one message."""
        await self._settle(lambda: complete(self._receiver, [message]))

    async def abandon_message(self, message: ReceivedMessage) -> None:
        """Abandon one message."""
        await self._settle(lambda: abandon(self._receiver, [message]))

    async def dead_letter_message(
        self,
        message: ReceivedMessage,
        reason: str | None = None,
        error_description: str | None = None,
    ) -> None:
        """Dead-letter one message with a reason and a description."""

        async def in_turn() -> None:
            # Taken inside the settlement, after the tombstones' save (which takes the same turn).
            async with self.state_turn:
                await dead_letter(self._receiver, message, reason=reason, description=error_description)

        await self._settle(in_turn)

    async def _settle(self, call: Callable[[], Awaitable[None]]) -> None:
        if self.lost:
            raise LockLostError("the lock was lost before this settlement; the message comes back")
        await self._save_tombstones()
        async with self._settling:
            try:
                await call()
            except LockLostError as exc:
                self.lose(str(exc))
                raise
            except TransientError as exc:
                if not self._sessionful:
                    raise
                # The SDK gives a session receiver up on a connection error: it cannot attach to it again.
                self.lose(str(exc))
                raise LockLostError(f"the session went with its connection: {exc}") from exc


def _retrieved(task: asyncio.Task[Tombstones]) -> None:
    if not task.cancelled():
        task.exception()
