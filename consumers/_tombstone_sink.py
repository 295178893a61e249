"""The sink the processor sees: shows each change its record's tombstone and keeps the tombstones current.

Before a change is applied it learns the newest version of its record that the session applied or deleted,
if the session's tombstones hold one (the stale guard compares it when the target row is missing). After it:
a change that was applied, or found already applied (a delete of a missing row, an unchanged row, a row at
its version or a newer one), leaves
its version as the record's tombstone, which the hold saves before it settles the message (one save for
all the changes of a batch message, and for the messages settled meanwhile). An update of a row that exists
records and saves its version before the target is written instead: if the target's own users delete the row
between that write and the settlement, and the consumer dies meanwhile, the change delivered again finds its
version recorded and re-creates nothing. Outside a session (no hold, or a subscription without sessions)
changes pass straight through; a session's change whose tombstones were not read is not applied (the session
is let go, its messages unsettled).
"""

from __future__ import annotations

import dataclasses
import logging
from functools import partial

from dualbus.consumers._hold import SessionHold, current_hold
from dualbus.consumers._sink import ApplyResult, Sink, TargetChange
from dualbus.consumers._tombstones import StateUnansweredError, Tombstones, tombstone_key
from dualbus.shared.bus import LockLostError
from dualbus.shared.maps import Side

__all__ = ["TombstoneSink"]

_log = logging.getLogger("dualbus.consumer")
# Applied, or found applied already: a row unchanged, a delete of a missing row, a row at this version or
# a newer one (a create whose answer was lost, delivered again, finds its own version there).
_DONE = frozenset({ApplyResult.APPLIED, ApplyResult.UNCHANGED, ApplyResult.SKIPPED_STALE})


class TombstoneSink:
    """Wraps a target's sink with the tombstones of the session each change comes from."""

    def __init__(self, sink: Sink, *, target: Side) -> None:
        """``target`` names the side the sink writes, whose table a tombstone is kept for."""
        self._sink = sink
        self._target: Side = target

    async def apply(self, change: TargetChange) -> ApplyResult:
        """Apply the change as its record's tombstone allows, then bring the tombstone up to date."""
        hold = current_hold()
        if hold is None or not hold.sessionful:
            return await self._sink.apply(change)
        stones = hold.tombstones
        if stones is None:
            # The worker waits for a session's tombstones before it applies anything (tombstones_read);
            # a change applied without them would pass the stale guard unseen, and an old change of a
            # deleted record would re-create it. Should that wait ever be skipped, the session goes back
            # to its next holder, who reads them, rather than being worked unguarded.
            why = "a change came to be applied before the session's tombstones were read"
            _log.error("%s: the session is let go", why)
            hold.lose(why)
            raise LockLostError(why)
        key = tombstone_key(change.table_map.name, change.table_map.table_on(self._target), change.key)
        # An update records its version, saved, before the target is written (see TargetChange.before_update).
        change = dataclasses.replace(
            change,
            deleted_version=stones.version(key),
            before_update=partial(_recorded_before_update, hold, stones, key, change.source_version),
        )
        result = await self._sink.apply(change)
        if result in _DONE:
            # Every version the target took is kept, not only deletes: a row can also be deleted on the
            # target itself (by its users) after dualbus wrote it, and a change delivered again after that
            # (its first settlement lost with a killed consumer) must find its version applied, not
            # re-create it. Saved by the hold before the message is settled (SessionHold._settle).
            # A stale delete left the row there (at a newer version): no delete's entry for it.
            gone = change.delete and result is not ApplyResult.SKIPPED_STALE
            await stones.bury(key, change.source_version, save=False, deleted=gone)
        return result

    async def aclose(self) -> None:
        """Close the wrapped sink."""
        await self._sink.aclose()


async def _recorded_before_update(hold: SessionHold, stones: Tombstones, key: str, version: int) -> None:
    """Save the version about to be written; a save that fails loses the hold, so that no other change of
    the batch goes on to its write (they are the session's next holder's now).

    Not only a lost lock: a save that got no answer in time was cut off, which closes the session's
    receiver (shared.bus_calls), and the broker frees the session for another consumer. Taken for a
    passing failure, it was retried on a closed receiver while the batch's other changes were written.
    Other failures (the namespace busy) are retried on the receiver, which is still open.
    """
    try:
        await stones.bury(key, version)
    except LockLostError as exc:
        hold.lose(f"saving the session's tombstones before a write: {exc}")
        raise
    except StateUnansweredError as exc:
        hold.lose(f"saving the session's tombstones before a write: {exc}")
        raise LockLostError(f"the session is let go: saving its state before a write failed: {exc}") from exc
