"""Tombstones: the deletes one session has applied, kept in that session's state in Service Bus.

A target keeps nothing of a row it deleted, so its stale guard cannot tell an old change of a deleted record
(delivered again after a lost lock, or replayed from a dead-letter queue) from the first change of a new one,
and the old change would re-create the row. Every change of a record travels in the session of its ordering
bucket, which one consumer holds exclusively, so that session's state is a consistent place to remember the
delete: map, target table and target key → the delete's source version, and when it was recorded. It lives
in the bus, so it survives any restart of a consumer (and of the emulator, which persists it).
Session state: https://learn.microsoft.com/azure/service-bus-messaging/message-sessions#message-session-state

The state stays bounded: a tombstone older than the subscription's message TTL goes (every message sent
before the delete was applied has expired by then), and past ``max_bytes`` the oldest go first, the versions
of applied changes before those of deletes. Every applied change leaves an entry, so a busy session reaches
the cap within a few hundred changes (an initial sync fills every session's), while deletes are few: left
in one age order, a delete's tombstone went after as many changes of other records and the delete's old
changes, delivered again or replayed later, re-created the row. The deletes are listed apart in the state
(``"deleted"``, beside the ``"tombstones"`` map every entry stays in, so that a consumer of an earlier
release reads the state as before). A state saved by something else, or unreadable, is started afresh with a
warning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import orjson

from dualbus.shared.bus_calls import SessionState, read_session_state, save_session_state
from dualbus.shared.errors import TransientError
from dualbus.shared.maps import Scalar

__all__ = ["SessionState", "StateUnansweredError", "Tombstones", "tombstone_key"]

_log = logging.getLogger("dualbus.consumer")
_T = TypeVar("_T")
_FORMAT = "dualbus.tombstones/1"
# The state's list of the keys whose entry is a delete's (absent from states saved before it was kept).
_DELETED = "deleted"
# Past the size cap, the deletes' entries keep up to this share of it: the applied changes' entries go first,
# down to the rest.
_DELETES_SHARE = 0.5
# Well under the 256 KB a Standard namespace allows for a session's state (and for one management request).
_MAX_BYTES = 64 * 1024
# A session-state request that gets no answer must not hold the session's records forever (the SDK waits
# on its management link without a limit when that link breaks): the worker lets the session go instead.
_STATE_TIMEOUT_SECONDS = 20.0
# What one entry costs beyond its encoded key: colon, brackets, version, time and comma.
_ENTRY_OVERHEAD = 40


def tombstone_key(map_name: str, table: str, key: Mapping[str, Scalar]) -> str:
    """Names one target row: its map, table and key (case-folded, as both targets compare keys)."""
    parts = sorted((name.lower(), str(value).lower()) for name, value in key.items())
    return orjson.dumps([map_name, table.lower(), parts]).decode()


class Tombstones:
    """Records' newest applied or deleted versions by key, saved to the session's state before the message
    of the change is settled (an update's before its write)."""

    def __init__(
        self,
        state: SessionState,
        *,
        ttl: timedelta,
        max_bytes: int = _MAX_BYTES,
        entries: Mapping[str, tuple[int, float]] | None = None,
        deleted: Collection[str] = (),
        clock: Callable[[], float] = time.time,
        turn: asyncio.Lock | None = None,
    ) -> None:
        """``entries`` are key → (source version, recorded at, epoch seconds), ``deleted`` the keys whose
        entry is a delete's; ``clock`` is wall time; ``turn``, when given, is held for each save (its
        holder's dead-letters take it too, see _hold)."""
        self._state = state
        self._turn = turn or asyncio.Lock()
        self._ttl = ttl.total_seconds()
        self._max_bytes = max_bytes
        self._clock = clock
        # Every entry, each as the saved state spells it, so that a save encodes only what changed since the
        # last one, not the whole state again.
        self._entries: dict[str, tuple[int, float]] = {}
        self._encoded: dict[str, bytes] = {}
        # The keys in the order they were recorded, oldest first (a newer version of a record moves it to
        # the end), applied changes' and deletes' apart: past the size cap the applied go first.
        self._applied: dict[str, None] = {}
        self._deletes: dict[str, None] = {}
        # What the state costs against ``max_bytes`` (its frame, and each entry's key and overhead), and
        # what of it the deletes' entries cost (their keys are listed twice).
        self._size = len(_FORMAT) + len(_DELETED) + 40
        self._deletes_size = 0
        for key, entry in sorted((entries or {}).items(), key=lambda item: item[1][1]):
            self._put(key, entry, deleted=key in deleted)
        # Set when the save in flight ends (None: none is): every caller waiting behind it wakes at once.
        self._save_ended: asyncio.Event | None = None
        self._changes = 0
        self._saved = 0

    @classmethod
    async def load(
        cls,
        state: SessionState,
        *,
        ttl: timedelta,
        max_bytes: int = _MAX_BYTES,
        turn: asyncio.Lock | None = None,
    ) -> Tombstones:
        """The tombstones saved in the session's state (none if it holds none); BusError when unreadable."""
        raw = await _answered(read_session_state(state), "reading")
        entries, deleted = _decode(raw)
        return cls(state, ttl=ttl, max_bytes=max_bytes, entries=entries, deleted=deleted, turn=turn)

    def __len__(self) -> int:
        return len(self._entries)

    def version(self, key: str) -> int | None:
        """The newest source version the record was applied or deleted at, None if none is kept for it."""
        entry = self._entries.get(key)
        return entry[0] if entry is not None else None

    def deleted(self, key: str) -> bool:
        """Whether the record's entry is a delete's."""
        return key in self._deletes

    async def bury(self, key: str, version: int, *, save: bool = True, deleted: bool = False) -> None:
        """Remember that the record was at ``version`` (a newer one kept stays): deleted by it, when
        ``deleted``, else written or found written.

        Saved on return, unless ``save`` is False: then the next ``flush`` saves it (before the message
        whose change it records is settled).
        """
        held = self.version(key)
        if held is not None and held >= version:
            if deleted and key not in self._deletes:
                # The row is gone by this delete, though a newer version was recorded (saved before a write
                # that the delete undid): kept at that version, now among the deletes.
                self._put(key, self._entries[key], deleted=True)
                self._changes += 1
            if save:
                # Held, but maybe not saved: an earlier save of it may have failed (and the change is
                # being tried again), and the caller is about to rely on it.
                await self.flush()
            return
        self._put(key, (version, self._clock()), deleted=deleted)
        self._changes += 1
        if save:
            await self.flush()

    @property
    def unsaved(self) -> bool:
        """Whether a change to the tombstones is not saved yet."""
        return self._saved < self._changes

    async def flush(self) -> None:
        """Save every change made so far, unless a save already carried it; BusError when it fails."""
        # Records of one batch change the state side by side: a save that starts after a change carries it,
        # so callers waiting behind one another share saves instead of each writing the whole state. They
        # wait on an event, not a lock: a lock hands itself on to one waiter per turn of the loop, and the
        # records of a batch then went on to their writes one by one (in many small $batch requests).
        wanted = self._changes
        while self._saved < wanted:
            if self._save_ended is not None:
                await self._save_ended.wait()
                continue  # carried by that save, or it failed (this caller saves, and hears why)
            await self._save()

    async def _save(self) -> None:
        self._save_ended = ended = asyncio.Event()
        try:
            # One turn of the loop lets every record of the batch that is ready (their reads were answered
            # together) add its change to this save, instead of waiting for a second one.
            await asyncio.sleep(0)
            covered = self._changes
            self._prune()
            async with self._turn:
                await _answered(save_session_state(self._state, self._encode()), "saving")
            self._saved = covered
        finally:
            self._save_ended = None
            ended.set()

    def _prune(self) -> None:
        """Drop the entries past the TTL; then, while the state is over its size cap, the oldest applied
        change's entry, unless the deletes' entries take more than their share of the cap (or no applied
        one is left): then the oldest delete's. The share keeps room for the applied changes, whose newest
        entries (an update's version saved before its write) must survive their own save."""
        horizon = self._clock() - self._ttl
        pruned = 0
        for lane in (self._applied, self._deletes):
            while lane and self._entries[oldest := next(iter(lane))][1] < horizon:
                self._drop(oldest)
                pruned += 1
        while self._entries and self._size > self._max_bytes:
            deletes_over = self._deletes_size > self._max_bytes * _DELETES_SHARE
            lane = self._deletes if deletes_over or not self._applied else self._applied
            self._drop(next(iter(lane)))
            pruned += 1
        if pruned:
            _log.info("pruned %d tombstones (past the TTL or the size cap)", pruned)

    def _encode(self) -> bytes:
        """The state to save, ``{"format": _FORMAT, "tombstones": {key: [version, at]}, "deleted": [key]}``
        as orjson writes it, from the entries' kept encodings."""
        stones = b",".join(self._encoded.values())
        deleted = orjson.dumps(list(self._deletes))
        return (
            b'{"format":'
            + orjson.dumps(_FORMAT)
            + b',"tombstones":{'
            + stones
            + b"},"
            + orjson.dumps(_DELETED)
            + b":"
            + deleted
            + b"}"
        )

    def _put(self, key: str, entry: tuple[int, float], *, deleted: bool) -> None:
        """Record an entry as the newest, encoded as the state spells it (``"key":[version,at]``)."""
        if key in self._entries:
            self._drop(key)
        name = orjson.dumps(key)
        version, at = entry
        self._entries[key] = entry
        self._encoded[key] = name + b":" + orjson.dumps([version, round(at, 3)])
        (self._deletes if deleted else self._applied)[key] = None
        self._count(len(name), deleted=deleted, sign=1)

    def _drop(self, key: str) -> None:
        del self._entries[key]
        self._encoded.pop(key)
        deleted = key in self._deletes
        del (self._deletes if deleted else self._applied)[key]
        self._count(len(orjson.dumps(key)), deleted=deleted, sign=-1)

    def _count(self, name: int, *, deleted: bool, sign: int) -> None:
        """Add (``sign`` 1) or take off (-1) what an entry whose encoded key is ``name`` bytes costs; a
        delete's key is listed again, with a comma."""
        cost = name + _ENTRY_OVERHEAD + (name + 1 if deleted else 0)
        self._size += sign * cost
        if deleted:
            self._deletes_size += sign * cost


def _decode(raw: bytes | None) -> tuple[dict[str, tuple[int, float]], set[str]]:
    """The entries and the deletes' keys a saved state holds (a state saved before deletes were listed
    apart holds none: its entries are all treated as applied changes')."""
    if not raw:
        return {}, set()
    try:
        body = orjson.loads(raw)
        stones = _tombstones_in(body)
        entries = {str(k): (int(v), float(at)) for k, (v, at) in stones.items()}
    except (TypeError, ValueError) as exc:
        # Nothing but dualbus writes this state; a foreign one is replaced rather than left to block work.
        _log.warning("the session state holds no readable tombstones (%s): starting with none", exc)
        return {}, set()
    deleted = body.get(_DELETED, [])
    if not isinstance(deleted, list):
        # The entries are readable: kept, every one as an applied change's.
        _log.warning("the session state's list of deletes is unreadable: its tombstones are kept as applied")
        return entries, set()
    return entries, {str(key) for key in deleted} & entries.keys()


def _tombstones_in(body: object) -> dict[str, Any]:
    stones = body.get("tombstones") if isinstance(body, dict) and body.get("format") == _FORMAT else None
    if not isinstance(stones, dict):
        raise TypeError("it was not saved by dualbus")
    return stones


class StateUnansweredError(TransientError):
    """A session-state request got no answer in time and was cut off, which closes the session's receiver."""


async def _answered(request: Awaitable[_T], doing: str) -> _T:
    try:
        return await asyncio.wait_for(request, _STATE_TIMEOUT_SECONDS)
    except TimeoutError as exc:
        waited = f"{_STATE_TIMEOUT_SECONDS:g} s"
        raise StateUnansweredError(f"{doing} the session state got no answer in {waited}") from exc
