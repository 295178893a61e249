"""The F&O producer's version clock: microseconds since the epoch, never issuing a value twice.

Standard F&O entities expose no modified time, so an F&O change's ``source_version`` is the producer's own
clock reading at the moment it read the row. Each value is above every value issued before, across the
producer's life and its restarts, even when the wall clock steps back: the clock reserves a lease of values
ahead in the checkpoint store (``marks``) before issuing any of them, so a process killed at any instant
restarts above everything it may have issued. A lease costs one SQLite write per ``lease`` microseconds of
issued values, not one per version.

Processes sharing one store file (the producer, a reconcile on the same host) never issue the same value;
each one's values increase, and theirs interleave within one lease at most.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dualbus.producers.checkpoints import CheckpointStore

__all__ = ["CLOCK_MARK", "VersionClock", "change_time", "process_clock", "version_time"]

CLOCK_MARK = "fo.clock"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# One second of values per reservation: a restart lands at most this far ahead of the wall clock.
_LEASE = 1_000_000


def _wall_clock() -> int:
    return time.time_ns() // 1000


def version_time(version: int) -> datetime:
    """The instant a clock version stands for."""
    return _EPOCH + timedelta(microseconds=version)


def change_time(version: int) -> datetime:
    """The time of a change published at ``version``: the version's instant, but never later than now.

    Versions only go up, also after the host's clock was set back: a clock once a day fast kept every
    later version (and so its time) that far ahead, and consumers dead-lettered each change as having an
    implausible time (more than a day ahead). The version keeps the order; the time says when.
    """
    return min(version_time(version), datetime.now(UTC))


class VersionClock:
    """Strictly increasing microsecond versions; durable across restarts when given a store."""

    def __init__(
        self,
        store: CheckpointStore | None = None,
        *,
        now: Callable[[], int] = _wall_clock,
        lease: int = _LEASE,
        name: str = CLOCK_MARK,
    ) -> None:
        self._store = store
        self._now = now
        self._lease = lease
        self._name = name
        self._last = 0
        self._reserved = -1
        self._lock = threading.Lock()

    def next(self) -> int:
        """A version above every one this clock (and any clock on the same store) issued before."""
        with self._lock:
            version = max(self._now(), self._last + 1)
            if self._store is not None and version > self._reserved:
                # Reserved before it is issued: a crash right after still restarts above it.
                version = self._store.reserve(self._name, version, self._lease)
                self._reserved = version + self._lease
            self._last = version
            return version


_PROCESS_CLOCK = VersionClock()


def process_clock() -> VersionClock:
    """One in-memory clock for the whole process (repairs published outside a producer)."""
    return _PROCESS_CLOCK
